// The API client: every call carries the session's key as a bearer token.
const STORAGE_KEY = 'sluice.apiKey';

export const session = {
  get key() {
    return sessionStorage.getItem(STORAGE_KEY);
  },
  set(key) {
    sessionStorage.setItem(STORAGE_KEY, key);
  },
  clear() {
    sessionStorage.removeItem(STORAGE_KEY);
  },
};

/** An API answer that was not 2xx, with the gateway's `{error: {code, message, details}}`. */
export class ApiError extends Error {
  constructor(status, body) {
    const error = body && typeof body === 'object' && body.error ? body.error : {};
    super(error.message || (status === 0 ? 'The gateway did not answer.' : `The gateway answered HTTP ${status}.`));
    this.status = status;
    this.code = error.code || `http_${status}`;
    this.details = Array.isArray(error.details) ? error.details : [];
  }
}

export async function request(method, path, body, key = session.key) {
  let res;
  try {
    res = await fetch('/api/v1' + path, {
      method,
      headers: {
        ...(key ? { authorization: `Bearer ${key}` } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, null);
  }
  const text = await res.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!res.ok) {
    // A key revoked mid-session: send the user back to sign in.
    if (res.status === 401 && key === session.key) window.dispatchEvent(new CustomEvent('sluice:unauthorized'));
    throw new ApiError(res.status, parsed);
  }
  return parsed;
}

export const api = {
  get: (path) => request('GET', path),
  post: (path, body = {}) => request('POST', path, body),
  patch: (path, body) => request('PATCH', path, body),
  del: (path) => request('DELETE', path),
};

/** `?a=1&b=2` from an object, leaving out empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== undefined && value !== null && value !== '') search.set(name, String(value));
  const text = search.toString();
  return text ? `?${text}` : '';
}

import { useState } from 'preact/hooks';
import { html } from '../html.js';
import { request } from '../api.js';
import { Notice } from './ui.js';

/**
 * Checks a key and finds its role: listing webhooks needs read, listing keys needs admin.
 * Resolves to 'admin' or 'read'; throws with a message a person can act on.
 */
export async function detectRole(key) {
  try {
    await request('GET', '/webhooks', undefined, key);
  } catch (err) {
    if (err.status === 401) throw new Error('This API key is not valid (or was revoked).');
    if (err.status === 403) throw new Error('This is an ingest key: it can post events but not read them. Sign in with a read or admin key.');
    throw err;
  }
  try {
    await request('GET', '/keys', undefined, key);
    return 'admin';
  } catch (err) {
    if (err.status === 403) return 'read';
    throw err;
  }
}

export function SignIn({ onSignedIn, reason }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const trimmed = key.trim();
      const role = await detectRole(trimmed);
      onSignedIn(trimmed, role);
    } catch (err) {
      setError(err.message);
      setBusy(false);
    }
  };
  return html`<main class="sign-in" id="main">
    <form class="card" onSubmit=${submit} aria-labelledby="sign-in-title">
      <h1 id="sign-in-title"><span class="brand-mark" aria-hidden="true">≋</span> Sluice</h1>
      <p>Sign in with an API key. An <strong>admin</strong> key can change things; a <strong>read</strong> key can look at everything.</p>
      ${reason && html`<${Notice} kind="warning">${reason}<//>`}
      <div class="field">
        <label for="api-key">API key</label>
        <input id="api-key" type="password" autocomplete="off" required value=${key} onInput=${(e) => setKey(e.currentTarget.value)} aria-describedby="api-key-hint" />
        <p class="hint" id="api-key-hint">Kept in this browser tab only (session storage) and sent as <code>Authorization: Bearer</code>.</p>
      </div>
      ${error && html`<${Notice} kind="error">${error}<//>`}
      <button type="submit" class="primary" disabled=${busy}>${busy ? 'Signing in…' : 'Sign in'}</button>
    </form>
  </main>`;
}

'use strict';

/** Every request to Sluice carries the API key as a bearer token. */
const includeApiKey = (request, z, bundle) => {
  request.headers = request.headers || {};
  request.headers.Authorization = `Bearer ${bundle.authData.api_key}`;
  request.headers.Accept = 'application/json';
  return request;
};

/** Turns Sluice's auth errors into messages a Zap user can act on; core throws for the rest. */
const explainAuthErrors = (response, z) => {
  if (response.status === 401) {
    throw new z.errors.Error('Sluice refused the API key: check it, or create a new one with `npx sluice keys create --role admin`.', 'AuthenticationError', 401);
  }
  if (response.status === 403) {
    throw new z.errors.Error('This Sluice API key is not an admin key; the hooks API needs the admin role.', 'AuthenticationError', 403);
  }
  return response;
};

module.exports = { befores: [includeApiKey], afters: [explainAuthErrors] };

// The API reference at /docs: Swagger UI (from node_modules) rendering the gateway's own
// /api/v1/openapi.json. No online validator badge: the page works offline.
/* global SwaggerUIBundle */
window.ui = SwaggerUIBundle({
  url: '/api/v1/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  validatorUrl: null,
  persistAuthorization: false,
  defaultModelsExpandDepth: 0,
});

'use strict';
/**
 * Custom auth: the gateway's base URL and an admin API key (the hooks API needs the admin
 * role). The test calls the sample endpoint, which needs exactly that role, so a read or
 * ingest key is refused at connection time rather than when a Zap is turned on.
 */
const { apiUrl } = require('./lib/rest-hook');

module.exports = {
  type: 'custom',
  fields: [
    {
      key: 'base_url',
      label: 'Sluice URL',
      required: true,
      type: 'string',
      helpText: 'Where your Sluice gateway is reachable from the internet, e.g. `https://sluice.example.com`.',
    },
    {
      key: 'api_key',
      label: 'API Key',
      required: true,
      type: 'password',
      helpText: 'An **admin** API key: `npx sluice keys create --role admin --name zapier`.',
    },
  ],
  test: async (z, bundle) => {
    const response = await z.request({ url: apiUrl(bundle, '/hooks/sample'), params: { event: 'call.ended' } });
    return response.data;
  },
  connectionLabel: '{{bundle.authData.base_url}}',
};

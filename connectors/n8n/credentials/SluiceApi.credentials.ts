import type { IAuthenticateGeneric, ICredentialTestRequest, ICredentialType, Icon, INodeProperties } from 'n8n-workflow';

/** A Sluice instance: its base URL and an API key (admin role: the trigger manages hooks). */
export class SluiceApi implements ICredentialType {
  name = 'sluiceApi';

  displayName = 'Sluice API';

  documentationUrl = 'https://www.npmjs.com/package/n8n-nodes-sluice';

  icon: Icon = { light: 'file:../icons/sluice.svg', dark: 'file:../icons/sluice.dark.svg' };

  properties: INodeProperties[] = [
    {
      displayName: 'Base URL',
      name: 'baseUrl',
      type: 'string',
      default: '',
      placeholder: 'https://sluice.example.com',
      description: 'Where the Sluice gateway answers, without /api/v1',
      required: true,
    },
    {
      displayName: 'API Key',
      name: 'apiKey',
      type: 'string',
      typeOptions: { password: true },
      default: '',
      description: 'A Sluice API key with the admin role: the trigger subscribes and unsubscribes itself through POST/DELETE /api/v1/hooks',
      required: true,
    },
  ];

  authenticate: IAuthenticateGeneric = {
    type: 'generic',
    properties: {
      headers: {
        Authorization: '=Bearer {{$credentials.apiKey}}',
      },
    },
  };

  // An admin-only read (the hooks API's sample call), so a read or ingest key fails here with
  // 403 instead of passing and then failing when a workflow is activated.
  test: ICredentialTestRequest = {
    request: {
      baseURL: '={{$credentials.baseUrl}}',
      url: '/api/v1/hooks/sample',
      method: 'GET',
      qs: { event: 'call.ended', connector: 'n8n' },
    },
  };
}

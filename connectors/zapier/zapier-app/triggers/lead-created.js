'use strict';
const { restHookTrigger } = require('../lib/rest-hook');

module.exports = restHookTrigger({
  key: 'lead_created',
  event: 'lead.created',
  noun: 'Lead',
  label: 'Lead Created',
  description: 'Triggers when a new lead is captured, with its contact details and score.',
  // The catalog example through mappings/zapier/default (kept in sync by test/connectors/zapier.contract.test.ts).
  sample: {
    id: 'evt_01HZX3K9Q2LEADCREATE0001',
    event: 'lead.created',
    timestamp: '2026-04-27T17:42:18Z',
    data_lead_id: 'lead_77f3',
    data_lead_email: 'pat.nguyen@example.org',
    data_lead_phone: '+16175550199',
    data_lead_firstname: 'Pat',
    data_lead_lastname: 'Nguyen',
    data_lead_company: 'Nguyen Roofing',
    data_lead_source_call_id: 'call_abc123',
    data_lead_score: 81,
  },
  outputFields: [
    { key: 'id', label: 'Event ID' },
    { key: 'timestamp', label: 'Event Time', type: 'datetime' },
    { key: 'data_lead_id', label: 'Lead ID' },
    { key: 'data_lead_email', label: 'Email' },
    { key: 'data_lead_phone', label: 'Phone' },
    { key: 'data_lead_firstname', label: 'First Name' },
    { key: 'data_lead_lastname', label: 'Last Name' },
    { key: 'data_lead_company', label: 'Company' },
    { key: 'data_lead_score', label: 'Score', type: 'number' },
  ],
});

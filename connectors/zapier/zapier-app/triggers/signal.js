'use strict';
const { restHookTrigger } = require('../lib/rest-hook');

/** Every signal.* event; `event` tells which one (signal.frustration_spike, signal.resolved, ...). */
module.exports = restHookTrigger({
  key: 'signal',
  event: 'signal.*',
  noun: 'Signal',
  label: 'New Signal',
  description: 'Triggers on every signal: missed disclosures, frustration spikes, product-qualified leads, resolutions.',
  // The catalog example of the first signal type through mappings/zapier/default
  // (kept in sync by test/connectors/zapier.contract.test.ts).
  sample: {
    id: 'evt_01HZX3K9Q2DISCLOSURE0001',
    event: 'signal.disclosure_missed',
    timestamp: '2026-04-27T18:01:44Z',
    data_conversation_id: 'conv_84377',
    data_agent: 'lee.m',
    data_severity: 'critical',
    data_disclosure: 'call_recording_consent',
    data_rubric_version: 7,
  },
  outputFields: [
    { key: 'id', label: 'Event ID' },
    { key: 'event', label: 'Signal Type' },
    { key: 'timestamp', label: 'Event Time', type: 'datetime' },
    { key: 'data_conversation_id', label: 'Conversation ID' },
    { key: 'data_agent', label: 'Agent' },
    { key: 'data_severity', label: 'Severity' },
  ],
});

'use strict';
const { restHookTrigger } = require('../lib/rest-hook');

module.exports = restHookTrigger({
  key: 'evaluation_completed',
  event: 'evaluation.completed',
  noun: 'Evaluation',
  label: 'Evaluation Completed',
  description: 'Triggers when a QA evaluation of a conversation is scored; the criteria arrive as line items.',
  // The catalog example through mappings/zapier/default (kept in sync by test/connectors/zapier.contract.test.ts).
  sample: {
    id: 'evt_01HZX3K9Q2EVALCOMPL0001',
    event: 'evaluation.completed',
    timestamp: '2026-04-27T17:42:17Z',
    data_conversation_id: 'conv_84291',
    data_score: 94,
    data_rubric_version: 7,
    data_agent: 'jordan.t',
    data_criteria: [
      { name: 'greeting', score: 10, max: 10 },
      { name: 'disclosure', score: 9, max: 10 },
      { name: 'resolution', score: 75, max: 80 },
    ],
  },
  outputFields: [
    { key: 'id', label: 'Event ID' },
    { key: 'timestamp', label: 'Event Time', type: 'datetime' },
    { key: 'data_conversation_id', label: 'Conversation ID' },
    { key: 'data_score', label: 'Score', type: 'number' },
    { key: 'data_agent', label: 'Agent' },
    { key: 'data_criteria[]name', label: 'Criterion' },
    { key: 'data_criteria[]score', label: 'Criterion Score', type: 'number' },
    { key: 'data_criteria[]max', label: 'Criterion Maximum', type: 'number' },
  ],
});

'use strict';
/**
 * Send Event: posts an event to Sluice (POST /api/v1/events), so a Zap can feed Sluice too.
 * The event's data comes from key-value pairs, a JSON object, or both (the pairs win).
 * An Event ID makes a repeated send harmless: Sluice stores an id once and answers the
 * repeat with the first answer and `duplicate: true`.
 */
const { apiUrl } = require('../lib/rest-hook');

const parseJsonObject = (z, text) => {
  if (text === undefined || text === null || String(text).trim() === '') return {};
  let parsed;
  try {
    parsed = JSON.parse(String(text));
  } catch (err) {
    throw new z.errors.Error(`Data (JSON) is not valid JSON: ${err.message}`, 'InvalidData', 400);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new z.errors.Error('Data (JSON) must be a JSON object, e.g. {"lead": {"email": "pat@example.com"}}', 'InvalidData', 400);
  }
  return parsed;
};

const perform = async (z, bundle) => {
  const input = bundle.inputData || {};
  const data = { ...parseJsonObject(z, input.data_json), ...(input.data || {}) };
  const body = { event: input.event_type, data };
  if (input.id) body.id = String(input.id);
  if (input.timestamp) body.timestamp = input.timestamp;
  const response = await z.request({
    url: apiUrl(bundle, '/events'),
    method: 'POST',
    body,
    // Sluice answers 422 with each problem's path: show it rather than a bare status.
    skipThrowForStatus: true,
  });
  if (response.status === 422) {
    const error = (response.data && response.data.error) || {};
    const details = Array.isArray(error.details) ? error.details.map((d) => `${d.path}: ${d.message}`).join('; ') : '';
    throw new z.errors.Error(`Sluice refused the event: ${error.message || 'invalid event'}${details ? ` (${details})` : ''}`, 'InvalidEvent', 422);
  }
  response.throwForStatus();
  return response.data;
};

module.exports = {
  key: 'send_event',
  noun: 'Event',
  display: {
    label: 'Send Event',
    description: 'Sends an event to Sluice, which delivers it to every matching subscription.',
  },
  operation: {
    inputFields: [
      {
        key: 'event_type',
        label: 'Event Type',
        required: true,
        dynamic: 'postable_event_type_list.id.name',
        helpText: "The event's type in the Sluice catalog. Sluice checks the data against the type's schema.",
      },
      {
        key: 'data',
        label: 'Data',
        dict: true,
        required: false,
        helpText: 'Fields of the event\'s data, e.g. `conversation_id` and `severity`. Use Data (JSON) for nested fields.',
      },
      {
        key: 'data_json',
        label: 'Data (JSON)',
        type: 'text',
        required: false,
        helpText: 'The event\'s data as a JSON object, e.g. `{"lead": {"id": "lead_1", "email": "pat@example.com"}}`. Data fields above are added to it.',
      },
      {
        key: 'id',
        label: 'Event ID',
        type: 'string',
        required: false,
        helpText: 'A stable id for this event (e.g. the id of the record that started the Zap). Sending the same id again creates nothing new. Leave empty to let Sluice make one.',
      },
      {
        key: 'timestamp',
        label: 'Event Time',
        type: 'datetime',
        required: false,
        helpText: 'When the event happened. Defaults to now.',
      },
    ],
    perform,
    sample: {
      id: 'evt_01HZX3K9Q2LEADCREATE0001',
      event: 'lead.created',
      deliveries: [{ id: 'dlv_01HZX3K9Q2SAMPLE00001', subscription_id: 'sub_01HZX3K9Q2SAMPLE00001' }],
      duplicate: false,
    },
    outputFields: [
      { key: 'id', label: 'Event ID' },
      { key: 'event', label: 'Event Type' },
      { key: 'duplicate', label: 'Already Sent', type: 'boolean' },
    ],
  },
};

'use strict';
/**
 * A hidden trigger that feeds the event-type dropdowns (New Event, Send Event): the live
 * catalog from GET /api/v1/event-types, one choice per type, with its description.
 */
const { apiUrl } = require('../lib/rest-hook');

const perform = async (z, bundle) => {
  const response = await z.request({ url: apiUrl(bundle, '/event-types') });
  const types = Array.isArray(response.data && response.data.data) ? response.data.data : [];
  const postable = bundle.inputData && bundle.inputData.postable;
  return types
    .filter((type) => type && typeof type.name === 'string')
    // Sluice's own sluice.* events can be subscribed to but never posted.
    .filter((type) => !postable || !type.name.startsWith('sluice.'))
    .map((type) => ({ id: type.name, name: type.name, description: typeof type.description === 'string' ? type.description : '' }))
    .sort((a, b) => a.id.localeCompare(b.id));
};

module.exports = {
  key: 'event_type_list',
  noun: 'Event Type',
  display: {
    label: 'Event Types',
    description: 'Lists the event types in the Sluice catalog, for the event type dropdowns.',
    hidden: true,
  },
  operation: {
    perform,
    sample: { id: 'call.ended', name: 'call.ended', description: 'A call finished normally.' },
    outputFields: [
      { key: 'id', label: 'Event Type' },
      { key: 'name', label: 'Name' },
      { key: 'description', label: 'Description' },
    ],
  },
};

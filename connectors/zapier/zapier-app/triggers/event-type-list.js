'use strict';
/**
 * Hidden triggers that feed the event type dropdowns: the live catalog from
 * GET /api/v1/event-types, one choice per type, with its description. New Event lists every
 * type; Send Event lists those that can be posted (Sluice's own sluice.* types cannot).
 */
const { apiUrl } = require('../lib/rest-hook');

const eventTypes = ({ postable }) => async (z, bundle) => {
  const response = await z.request({ url: apiUrl(bundle, '/event-types') });
  const types = Array.isArray(response.data && response.data.data) ? response.data.data : [];
  return types
    .filter((type) => type && typeof type.name === 'string')
    .filter((type) => !postable || !type.name.startsWith('sluice.'))
    .map((type) => ({ id: type.name, name: type.name, description: typeof type.description === 'string' ? type.description : '' }))
    .sort((a, b) => a.id.localeCompare(b.id));
};

const eventTypeList = ({ key, label, description, postable }) => ({
  key,
  noun: 'Event Type',
  display: { label, description, hidden: true },
  operation: {
    perform: eventTypes({ postable }),
    sample: { id: 'call.ended', name: 'call.ended', description: 'A call finished normally.' },
    outputFields: [
      { key: 'id', label: 'Event Type' },
      { key: 'name', label: 'Name' },
      { key: 'description', label: 'Description' },
    ],
  },
});

module.exports = {
  all: eventTypeList({
    key: 'event_type_list',
    label: 'Event Types',
    description: 'Lists every event type in the Sluice catalog, for the New Event dropdown.',
    postable: false,
  }),
  postable: eventTypeList({
    key: 'postable_event_type_list',
    label: 'Postable Event Types',
    description: 'Lists the event types an event can be sent as (all but Sluice\'s own sluice.* types), for the Send Event dropdown.',
    postable: true,
  }),
};

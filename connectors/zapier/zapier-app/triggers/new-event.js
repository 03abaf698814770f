'use strict';
const { restHookTrigger } = require('../lib/rest-hook');

/** Any catalog event type, picked in the Zap from a dropdown of the live catalog. */
module.exports = restHookTrigger({
  key: 'new_event',
  event: null,
  noun: 'Event',
  label: 'New Event',
  description: 'Triggers when Sluice receives an event of the type you choose, from the whole event catalog.',
  inputFields: [
    {
      key: 'event_type',
      label: 'Event Type',
      required: true,
      dynamic: 'event_type_list.id.name',
      helpText: 'The Sluice event type that triggers the Zap. Every event type in your Sluice catalog is listed.',
    },
  ],
  // The call.ended catalog example through mappings/zapier/default: each event type has its own
  // fields, and the Zap editor shows real ones from GET /api/v1/hooks/sample for the chosen type.
  sample: require('./call-ended').operation.sample,
  outputFields: [
    { key: 'id', label: 'Event ID' },
    { key: 'event', label: 'Event Type' },
    { key: 'timestamp', label: 'Event Time', type: 'datetime' },
  ],
});

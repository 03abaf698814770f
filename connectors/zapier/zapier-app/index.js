'use strict';
/**
 * The Sluice integration for Zapier (Platform CLI shape). Push it with the Zapier CLI, which
 * needs Node 22 or later (see ../README.md). Every visible trigger is a REST hook: turning a
 * Zap on subscribes it through POST /api/v1/hooks, turning it off unsubscribes it, and the Zap
 * editor's samples come from GET /api/v1/hooks/sample. The hidden event_type_list triggers feed
 * the event type dropdowns; the Send Event create posts an event to Sluice.
 */
const authentication = require('./authentication');
const middleware = require('./middleware');
const callEnded = require('./triggers/call-ended');
const evaluationCompleted = require('./triggers/evaluation-completed');
const leadCreated = require('./triggers/lead-created');
const signal = require('./triggers/signal');
const newEvent = require('./triggers/new-event');
const eventTypeLists = require('./triggers/event-type-list');
const sendEvent = require('./creates/send-event');

const triggers = [callEnded, evaluationCompleted, leadCreated, signal, newEvent, eventTypeLists.all, eventTypeLists.postable];
const creates = [sendEvent];

module.exports = {
  version: require('./package.json').version,
  platformVersion: require('zapier-platform-core').version,

  authentication,
  beforeRequest: middleware.befores,
  afterResponse: middleware.afters,

  triggers: Object.fromEntries(triggers.map((trigger) => [trigger.key, trigger])),
  searches: {},
  creates: Object.fromEntries(creates.map((create) => [create.key, create])),
};

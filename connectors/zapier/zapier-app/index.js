'use strict';
/**
 * The Sluice integration for Zapier (Platform CLI shape). Push it with
 *   cd connectors/zapier/zapier-app && npm install && npx zapier-platform-cli push
 * See ../README.md. Every trigger is a REST hook: turning a Zap on subscribes it through
 * POST /api/v1/hooks, turning it off unsubscribes it, and the Zap editor's samples come
 * from GET /api/v1/hooks/sample.
 */
const authentication = require('./authentication');
const middleware = require('./middleware');
const callEnded = require('./triggers/call-ended');
const evaluationCompleted = require('./triggers/evaluation-completed');
const leadCreated = require('./triggers/lead-created');
const signal = require('./triggers/signal');

const triggers = [callEnded, evaluationCompleted, leadCreated, signal];

module.exports = {
  version: require('./package.json').version,
  platformVersion: require('zapier-platform-core').version,

  authentication,
  beforeRequest: middleware.befores,
  afterResponse: middleware.afters,

  triggers: Object.fromEntries(triggers.map((trigger) => [trigger.key, trigger])),
  searches: {},
  creates: {},
};

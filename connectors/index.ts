import type { ConnectorDefinition } from '../src/delivery/connector.ts';
import { webhookConnector } from './webhook/index.ts';
import { slackConnector } from './slack/index.ts';
import { pagerDutyConnector } from './pagerduty/index.ts';
import { hubspotConnector } from './hubspot/index.ts';
import { zapierConnector } from './zapier/index.ts';
import { n8nConnector } from './n8n-webhook/index.ts';

/** Every connector Sluice ships, by name. */
export const CONNECTORS: readonly ConnectorDefinition[] = [webhookConnector, slackConnector, pagerDutyConnector, zapierConnector, hubspotConnector, n8nConnector];

import type { ConnectorDefinition } from '../src/delivery/connector.ts';
import { webhookConnector } from './webhook/index.ts';

/** Every connector Sluice ships, by name. */
export const CONNECTORS: readonly ConnectorDefinition[] = [webhookConnector];

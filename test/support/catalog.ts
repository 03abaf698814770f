import fs from 'node:fs';
import path from 'node:path';
import { MappingRegistry } from '../../src/services/mapping-registry.ts';
import { REPO_ROOT } from './gateway.ts';
import { ROOMY_LIMITS } from './limits.ts';

/** The platform events in ../shared/fixtures/events (see fixture() in gateway.ts). */
export const FIXTURE_EVENTS = ['agent.status_changed', 'call.ended', 'call.failed', 'evaluation.completed', 'lead.created', 'signal.disclosure_missed', 'signal.frustration_spike', 'signal.product_qualified_lead'];

export type CatalogEvent = { event: string; id: string; timestamp: string; data: any; test?: boolean };

/** The example event of a catalog entry (catalog/events/<name>.json). */
export function catalogExample(name: string): CatalogEvent {
  return JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'catalog/events', `${name}.json`), 'utf8')).example;
}

/**
 * The templates shipped in mappings/, loaded as the gateway loads them. These tests check what
 * templates produce, not how fast: a generous time limit keeps a loaded machine from failing them.
 */
export async function loadShippedMappings(): Promise<MappingRegistry> {
  const mappings = new MappingRegistry({ dir: path.join(REPO_ROOT, 'mappings'), limits: ROOMY_LIMITS });
  await mappings.load();
  return mappings;
}

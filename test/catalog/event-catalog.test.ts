import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { loadEventCatalog } from '../../src/catalog/event-catalog.ts';

const CATALOG_DIR = fileURLToPath(new URL('../../catalog/events/', import.meta.url));
const FIXTURES_DIR = fileURLToPath(new URL('../../../shared/fixtures/events/', import.meta.url));

const catalog = loadEventCatalog(CATALOG_DIR);
const fixtures = fs
  .readdirSync(FIXTURES_DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => ({ file: f, event: JSON.parse(fs.readFileSync(path.join(FIXTURES_DIR, f), 'utf8')) }));

const REQUIRED_TYPES = [
  'call.received', 'call.started', 'call.ended', 'call.failed', 'call.qualified',
  'evaluation.completed', 'transcript.available', 'recording.ready', 'lead.created', 'lead.updated',
  'signal.frustration_spike', 'signal.disclosure_missed', 'signal.product_qualified_lead', 'signal.resolved',
  'agent.status_changed', 'review.requested', 'review.received', 'audit.log.event',
  'sluice.delivery.failed', 'sluice.webhook.disabled',
];

const clone = <T>(v: T): T => structuredClone(v) as T;
const example = (name: string) => clone(catalog.get(name)!.example.data) as Record<string, any>;

describe('the shipped catalog', () => {
  it('covers every event type the product promises', () => {
    for (const name of REQUIRED_TYPES) expect(catalog.has(name), name).toBe(true);
  });

  it('has a fixture for each type it is checked against', () => {
    expect(fixtures.length).toBeGreaterThan(0);
  });

  it.each(fixtures.map((f) => [f.file, f.event]))('accepts the fixture %s', (_file, event) => {
    expect(catalog.has(event.event)).toBe(true);
    expect(catalog.validate(event.event, event.data)).toEqual([]);
  });

  it.each(fixtures.map((f) => [f.file, f.event]))('uses the fixture %s verbatim as the example', (_file, event) => {
    expect(catalog.get(event.event)!.example).toEqual(event);
  });

  it.each(REQUIRED_TYPES)('has a self-consistent entry for %s', (name) => {
    const info = catalog.get(name)!;
    expect(info.name).toBe(name);
    expect(info.description.length).toBeGreaterThan(10);
    expect(info.example.event).toBe(name);
    expect(info.example.id).toMatch(/^evt_[0-9A-Z]+$/);
    expect(Number.isNaN(Date.parse(info.example.timestamp))).toBe(false);
    expect(catalog.validate(name, info.example.data)).toEqual([]);
    // Every type requires something: a schema that accepts {} protects no receiver.
    expect(catalog.validate(name, {}).length).toBeGreaterThan(0);
  });

  it('lists every type sorted by name, with schema and example', () => {
    const names = catalog.list().map((t) => t.name);
    expect(names).toEqual([...names].sort());
    expect(names.length).toBeGreaterThanOrEqual(REQUIRED_TYPES.length);
    for (const t of catalog.list()) expect(Object.keys(t).sort()).toEqual(['description', 'example', 'name', 'schema']);
  });

  it('hands out entries that cannot be mutated by a caller', () => {
    const info = catalog.get('call.ended')!;
    expect(() => {
      (info.example.data as Record<string, unknown>).call = null;
    }).toThrow(TypeError);
  });
});

describe('EventCatalog.validate', () => {
  it('reports a missing required field at the missing property path', () => {
    const data = example('call.ended');
    delete data.call.status;
    expect(catalog.validate('call.ended', data)).toEqual([{ path: '$.data.call.status', message: 'is required', keyword: 'required' }]);
  });

  it('reports a missing top-level object at its own path', () => {
    const data = example('lead.created');
    delete data.lead;
    expect(catalog.validate('lead.created', data)).toEqual([{ path: '$.data.lead', message: 'is required', keyword: 'required' }]);
  });

  it('reports a wrong type at the value path', () => {
    const data = example('call.ended');
    data.call.id = 12345;
    expect(catalog.validate('call.ended', data)).toEqual([{ path: '$.data.call.id', message: 'must be string', keyword: 'type' }]);
  });

  it('indexes into arrays with brackets', () => {
    const data = example('evaluation.completed');
    data.criteria[1].score = 'nine';
    expect(catalog.validate('evaluation.completed', data)).toEqual([{ path: '$.data.criteria[1].score', message: 'must be number', keyword: 'type' }]);
  });

  it('reports every problem at once', () => {
    const data = example('signal.frustration_spike');
    delete data.conversation_id;
    data.frustration_score = 1.7;
    data.severity = 'apocalyptic';
    const errors = catalog.validate('signal.frustration_spike', data);
    expect(errors.map((e) => e.path).sort()).toEqual(['$.data.conversation_id', '$.data.frustration_score', '$.data.severity']);
    expect(errors.find((e) => e.path === '$.data.severity')!.message).toBe('must be one of "info", "low", "medium", "high", "critical"');
  });

  it('checks formats', () => {
    const data = example('lead.created');
    data.lead.email = 'not-an-email';
    const ended = example('call.ended');
    ended.call.ended_at = 'yesterday';
    ended.recording.url = 'not a url';
    expect(catalog.validate('lead.created', data)).toEqual([{ path: '$.data.lead.email', message: 'must match format "email"', keyword: 'format' }]);
    expect(catalog.validate('call.ended', ended).map((e) => e.path)).toEqual(['$.data.call.ended_at', '$.data.recording.url']);
  });

  it('allows properties the schema does not describe', () => {
    const data = example('call.ended');
    data.platform_extra = { anything: [1, 2, 3] };
    data.call.sip_call_id = 'abc@10.0.0.1';
    expect(catalog.validate('call.ended', data)).toEqual([]);
  });

  it('rejects data that is not an object at $.data', () => {
    expect(catalog.validate('call.ended', 'hello')).toEqual([{ path: '$.data', message: 'must be object', keyword: 'type' }]);
    expect(catalog.validate('call.ended', null)).toEqual([{ path: '$.data', message: 'must be object', keyword: 'type' }]);
  });

  it('accepts a gateway operational event whose last attempt got no response', () => {
    const data = example('sluice.delivery.failed');
    data.last_status_code = null;
    data.last_error = 'connect ECONNREFUSED';
    expect(catalog.validate('sluice.delivery.failed', data)).toEqual([]);
  });

  it('refuses an unknown event type with one problem at $.event', () => {
    expect(catalog.has('call.exploded')).toBe(false);
    expect(catalog.get('call.exploded')).toBeUndefined();
    expect(catalog.validate('call.exploded', {})).toEqual([{ path: '$.event', message: '"call.exploded" is not an event type in the catalog', keyword: 'event' }]);
  });
});

describe('EventCatalog patterns', () => {
  it('expands a pattern into the catalog names it selects', () => {
    expect(catalog.matchPattern('call.*')).toEqual(['call.ended', 'call.failed', 'call.qualified', 'call.received', 'call.started']);
    expect(catalog.matchPattern('sluice.*')).toEqual(['sluice.delivery.failed', 'sluice.webhook.disabled']);
    expect(catalog.matchPattern('lead.created')).toEqual(['lead.created']);
    expect(catalog.matchPattern('*')).toEqual(catalog.list().map((t) => t.name));
    expect(catalog.matchPattern('nothing.*')).toEqual([]);
  });

  it('knows *, exact names and wildcards that select something', () => {
    expect(catalog.isKnownPattern('*')).toBe(true);
    expect(catalog.isKnownPattern('call.ended')).toBe(true);
    expect(catalog.isKnownPattern('signal.*')).toBe(true);
    expect(catalog.isKnownPattern('sluice.delivery.*')).toBe(true);
    expect(catalog.isKnownPattern('audit.*')).toBe(true);
  });

  it('does not know names or wildcards outside the catalog', () => {
    expect(catalog.isKnownPattern('call.exploded')).toBe(false);
    expect(catalog.isKnownPattern('nothing.*')).toBe(false);
    expect(catalog.isKnownPattern('cal.*')).toBe(false);
    expect(catalog.isKnownPattern('call*')).toBe(false);
    expect(catalog.isKnownPattern('*.ended')).toBe(false);
    expect(catalog.isKnownPattern('')).toBe(false);
  });
});

describe('loadEventCatalog', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });

  const valid = {
    name: 'thing.happened',
    description: 'A thing happened.',
    schema: { type: 'object', required: ['thing_id'], properties: { thing_id: { type: 'string' } } },
    example: { event: 'thing.happened', id: 'evt_1', timestamp: '2026-01-01T00:00:00Z', data: { thing_id: 'th_1' } },
  };

  function catalogDir(files: Record<string, unknown>): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-catalog-'));
    dirs.push(dir);
    for (const [name, content] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      fs.writeFileSync(path.join(dir, name), typeof content === 'string' ? content : JSON.stringify(content));
    }
    return dir;
  }

  it('loads a valid directory, ignoring files that are not JSON', () => {
    const catalogFromDir = loadEventCatalog(catalogDir({ 'thing.happened.json': valid, 'README.md': '# notes' }));
    expect(catalogFromDir.list().map((t) => t.name)).toEqual(['thing.happened']);
    expect(catalogFromDir.validate('thing.happened', {})).toEqual([{ path: '$.data.thing_id', message: 'is required', keyword: 'required' }]);
  });

  it('reads files in subfolders too', () => {
    const catalogFromDir = loadEventCatalog(catalogDir({ 'things/thing.happened.json': valid }));
    expect(catalogFromDir.has('thing.happened')).toBe(true);
  });

  it('refuses a missing directory, naming it', () => {
    expect(() => loadEventCatalog('/nonexistent/sluice-catalog')).toThrow(/\/nonexistent\/sluice-catalog/);
  });

  it.each([
    ['malformed JSON', '{"name": "thing.happened",', /thing\.happened\.json: not valid JSON/],
    ['a non-object', '[1, 2]', /thing\.happened\.json: must be a JSON object/],
    ['a file named after another event', { ...valid, name: 'other.thing' }, /thing\.happened\.json: the file must be named other\.thing\.json/],
    ['a bad event name', { ...valid, name: 'Thing' }, /thing\.happened\.json: "name" must be/],
    ['no description', { ...valid, description: '' }, /thing\.happened\.json: "description"/],
    ['a schema that does not compile', { ...valid, schema: { type: 'strnig' } }, /thing\.happened\.json: "schema" does not compile/],
    ['a misspelled schema keyword', { ...valid, schema: { type: 'object', requried: ['x'] } }, /thing\.happened\.json: "schema" does not compile/],
    ['no example', { ...valid, example: undefined }, /thing\.happened\.json: "example" must be/],
    ['an example of another event', { ...valid, example: { ...valid.example, event: 'x.y' } }, /thing\.happened\.json: "example\.event"/],
    ['an example failing its schema', { ...valid, example: { ...valid.example, data: {} } }, /thing\.happened\.json: "example\.data" fails its own schema: \$\.data\.thing_id is required/],
  ])('refuses %s, naming the file', (_what, content, error) => {
    expect(() => loadEventCatalog(catalogDir({ 'thing.happened.json': content }))).toThrow(error);
  });

  it('refuses the same event type defined twice', () => {
    const dir = catalogDir({ 'a/thing.happened.json': valid, 'b/thing.happened.json': valid });
    expect(() => loadEventCatalog(dir)).toThrow(/b\/thing\.happened\.json: event type "thing\.happened" is defined twice/);
  });
});

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TemplateError } from '../../src/errors.ts';
import { createLogger } from '../../src/logger.ts';
import { MappingRegistry, isTemplateName, jsonEqual, type ReloadEvent } from '../../src/services/mapping-registry.ts';
import { thrownBy } from '../support/error-shape.ts';
import { ROOMY_LIMITS } from '../support/limits.ts';

const callEnded = {
  event: 'call.ended',
  id: 'evt_1',
  timestamp: '2026-03-15T14:30:00Z',
  data: { call: { id: 'call_abc123', status: 'completed', duration: 180 } },
};

let dir: string;
let registry: MappingRegistry | undefined;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-mappings-'));
});

afterEach(async () => {
  await registry?.close();
  registry = undefined;
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Writes through a rename, as many editors save (and so the watcher never sees a half-written file). */
function write(relative: string, text: string): void {
  const file = path.join(dir, relative);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(`${file}.tmp`, text);
  fs.renameSync(`${file}.tmp`, file);
}

function open(extra: Partial<ConstructorParameters<typeof MappingRegistry>[0]> = {}): MappingRegistry {
  registry = new MappingRegistry({ dir, debounceMs: 10, limits: ROOMY_LIMITS, ...extra });
  return registry;
}

/** Resolves with the first reload event that satisfies the predicate; fails after 5 s. */
function reloadWhere(reg: MappingRegistry, predicate: (event: ReloadEvent) => boolean): Promise<ReloadEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reg.off('reload', listener);
      reject(new Error('no matching reload within 5 s'));
    }, 5000);
    const listener = (event: ReloadEvent) => {
      if (!predicate(event)) return;
      clearTimeout(timer);
      reg.off('reload', listener);
      resolve(event);
    };
    reg.on('reload', listener);
  });
}

describe('MappingRegistry.load', () => {
  it('loads templates recursively with nested names and their examples', async () => {
    write('call-summary.jsonata', '{ "call": data.call.id }');
    write('call-summary.examples.json', JSON.stringify([{ input: callEnded, expected: { call: 'call_abc123' } }]));
    write('slack/alert.jsonata', '{ "text": "Call " & data.call.id }');
    write('README.md', 'not a template');
    const reg = open({ now: () => new Date('2026-01-01T00:00:00Z') });

    const event = await reg.load();

    expect(event.changed).toEqual(['call-summary', 'slack/alert']);
    expect(reg.get('slack/alert')?.source).toBe('{ "text": "Call " & data.call.id }');
    expect(reg.get('README')).toBeUndefined();
    expect(reg.list()).toEqual([
      {
        name: 'call-summary',
        source: '{ "call": data.call.id }',
        examples: [{ input: callEnded, expected: { call: 'call_abc123' } }],
        active: true,
        loaded_at: '2026-01-01T00:00:00.000Z',
      },
      { name: 'slack/alert', source: '{ "text": "Call " & data.call.id }', examples: [], active: true, loaded_at: '2026-01-01T00:00:00.000Z' },
    ]);
  });

  it('records a template that does not compile, with its position, and keeps loading the others', async () => {
    write('good.jsonata', 'data');
    write('broken.jsonata', '{\n  "a": ( 1 + }\n}');
    const reg = open();

    const event = await reg.load();

    expect(event.failed).toEqual(['broken']);
    const broken = reg.list().find((t) => t.name === 'broken');
    expect(broken).toMatchObject({
      active: false,
      loaded_at: null,
      error: { file: 'broken.jsonata', code: 'template_syntax_error', line: 2, column: 14, token: '}' },
    });
    expect(broken?.error?.message).toMatch(/^Syntax error at line 2, column 14/);
    expect(reg.get('good')).toBeDefined();
    expect(() => reg.resolve('broken')).toThrow(expect.objectContaining({ code: 'template_unavailable' }));
  });

  it('treats a malformed examples file as a load error of that template only', async () => {
    write('summary.jsonata', '{ "id": id }');
    write('summary.examples.json', '[{ "input": {} ');
    write('shape.jsonata', 'data');
    write('shape.examples.json', '[{ "input": {} }]');
    const reg = open();

    await reg.load();

    const [shape, summary] = reg.list();
    expect(summary).toMatchObject({ name: 'summary', active: true, examples: [], error: { file: 'summary.examples.json', code: 'examples_invalid' } });
    expect(shape.error?.message).toContain('example 1 has no "expected"');
    expect(reg.get('summary')).toBeDefined();
    const results = await reg.runExamples();
    expect(results.filter((r) => !r.ok).map((r) => r.name)).toEqual(['shape', 'summary']);
  });

  it('loads nothing from a directory that does not exist', async () => {
    const reg = new MappingRegistry({ dir: path.join(dir, 'missing'), limits: ROOMY_LIMITS });
    expect(await reg.load()).toEqual({ changed: [], removed: [], failed: [] });
    expect(reg.list()).toEqual([]);
  });
});

describe('MappingRegistry.resolve', () => {
  it('resolves names, refuses unknown names and compiles inline templates once', async () => {
    write('slack/alert.jsonata', '{ "text": data.call.id }');
    const reg = open();
    await reg.load();

    expect(reg.resolve('slack/alert')).toBe(reg.get('slack/alert'));
    expect(() => reg.resolve('slack/missing')).toThrow(expect.objectContaining({ code: 'mapping_not_found', status: 422 }));

    const inline = reg.resolve('{ "id": data.call.id }');
    expect(reg.resolve('{ "id": data.call.id }')).toBe(inline);
    expect(await reg.render('{ "id": data.call.id }', callEnded)).toEqual({ id: 'call_abc123' });
    expect(() => reg.resolve('{ "id": }')).toThrow(TemplateError);
  });

  it('keeps a bounded number of inline templates', async () => {
    const reg = open({ inlineCacheSize: 2 });
    const first = reg.resolve('$.a');
    reg.resolve('$.b');
    expect(reg.resolve('$.a')).toBe(first); // refreshed: now the most recent
    reg.resolve('$.c'); // evicts $.b
    expect(reg.resolve('$.a')).toBe(first);
    const b = reg.resolve('$.b');
    expect(reg.resolve('$.b')).toBe(b);
    reg.resolve('$.d');
    reg.resolve('$.e');
    expect(reg.resolve('$.a')).not.toBe(first);
  });

  it('tells template names from inline JSONata', () => {
    expect(isTemplateName('call-summary')).toBe(true);
    expect(isTemplateName('slack/alert_v2')).toBe(true);
    expect(isTemplateName('{ "a": 1 }')).toBe(false);
    expect(isTemplateName('data.call')).toBe(false);
    expect(isTemplateName('$')).toBe(false);
  });

  it('checks a subscription\'s mapping and filter, with the path and position of each problem', async () => {
    write('ok.jsonata', 'data');
    const reg = open();
    await reg.load();

    expect(reg.checkMapping('ok', '$.mapping')).toEqual([]);
    expect(reg.checkFilter('data.score < 60', '$.filter')).toEqual([]);
    expect(reg.checkMapping('nope', '$.mapping')).toEqual([
      expect.objectContaining({ path: '$.mapping', message: expect.stringContaining('No mapping template named "nope"') }),
    ]);
    expect(reg.checkFilter('data.score <\n ]', '$.filter')).toEqual([
      expect.objectContaining({ path: '$.filter', line: 2, column: 2, token: ']', message: expect.stringMatching(/^Syntax error at line 2, column 2/) }),
    ]);
  });

  it('renders and filters with $subscription and only allow-listed $env variables', async () => {
    const reg = open({ envAllowlist: ['REGION'], env: { REGION: 'eu-west-1', SLUICE_MASTER_KEY: 'k' } });
    const template = '{ "sub": $subscription.id, "region": $env("REGION"), "key": $env("SLUICE_MASTER_KEY") }';
    expect(await reg.render(template, callEnded, { id: 'sub_1' })).toEqual({ sub: 'sub_1', region: 'eu-west-1' });
    expect(await reg.filterMatches('data.call.status = "completed" and $env("REGION") = "eu-west-1"', callEnded)).toBe(true);
    expect(await reg.filterMatches('data.score < 60', callEnded)).toBe(false);
  });
});

describe('MappingRegistry.runExamples', () => {
  it('compares each output with the expected one, regardless of key order', async () => {
    write('summary.jsonata', 'data.call.{ "call": id, "status": status }');
    write('summary.examples.json', JSON.stringify([
      { input: callEnded, expected: { status: 'completed', call: 'call_abc123' } },
      { description: 'wrong on purpose', input: callEnded, expected: { call: 'call_abc123', status: 'failed' } },
      { input: { data: {} }, expected: {} },
    ]));
    const reg = open();
    await reg.load();

    const results = await reg.runExamples('summary');

    expect(results.map((r) => r.ok)).toEqual([true, false, false]);
    expect(results[0]).toMatchObject({ name: 'summary', index: 0, description: 'call.ended' });
    expect(results[1]).toMatchObject({ index: 1, description: 'wrong on purpose', actual: { call: 'call_abc123', status: 'completed' } });
    expect(results[2].error).toMatchObject({ code: 'template_undefined_result' });
    await expect(reg.runExamples('other')).rejects.toMatchObject({ code: 'mapping_not_found' });
  });

  it('passes $subscription from an example', async () => {
    write('sub.jsonata', '$subscription.id');
    write('sub.examples.json', JSON.stringify([{ input: callEnded, subscription: { id: 'sub_9' }, expected: 'sub_9' }]));
    const reg = open();
    await reg.load();
    expect((await reg.runExamples()).map((r) => r.ok)).toEqual([true]);
  });

  it('passes on the starter templates shipped in mappings/', async () => {
    const shipped = new MappingRegistry({ dir: path.resolve('mappings'), limits: ROOMY_LIMITS });
    await shipped.load();
    const results = await shipped.runExamples();
    expect(shipped.list().map((t) => t.name)).toEqual(expect.arrayContaining(['call-summary', 'include-recording', 'signal-alert']));
    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect(results.length).toBeGreaterThanOrEqual(7);
  });
});

describe('jsonEqual', () => {
  it('ignores key order but not array order', () => {
    expect(jsonEqual({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1 })).toBe(true);
    expect(jsonEqual([1, 2], [2, 1])).toBe(false);
    expect(jsonEqual({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(jsonEqual({ a: null }, {})).toBe(false);
    expect(jsonEqual([], {})).toBe(false);
  });

  it('compares arrays item by item, every item, and leaves keys whose value is undefined out', () => {
    expect(jsonEqual([1, 2, 3], [1, 2, 4])).toBe(false);
    expect(jsonEqual([1, 2], [1, 2, 3])).toBe(false);
    expect(jsonEqual([{ a: 1 }], [{ a: 1 }])).toBe(true);
    expect(jsonEqual({ 0: 1 }, [1])).toBe(false);
    expect(jsonEqual([1], { 0: 1 })).toBe(false);
    // A template's output may carry a key jsonata left undefined: JSON would not show it.
    expect(jsonEqual({ a: 1, gone: undefined }, { a: 1 })).toBe(true);
    expect(jsonEqual({ a: 1 }, { a: 1, gone: undefined })).toBe(true);
    expect(jsonEqual({ a: 1, b: undefined }, { a: 1, c: 2 })).toBe(false);
    expect(jsonEqual({ a: undefined, b: 2 }, { a: 1, b: 2 })).toBe(false);
    expect(jsonEqual(null, {})).toBe(false);
    expect(jsonEqual({}, null)).toBe(false);
  });
});

describe('MappingRegistry: what it reads and how it reports problems', () => {
  it('refuses an examples file that is not a list of {input, expected} objects, naming the example', async () => {
    const cases: [string, string][] = [
      ['{"input": {}, "expected": 1}', 'expected a JSON array of {"input": <event>, "expected": <output>}'],
      ['[{"input": {}, "expected": 1}, null]', 'example 2 is not an object'],
      ['[5]', 'example 1 is not an object'],
      ['[[]]', 'example 1 is not an object'],
      ['[{"expected": 1}]', 'example 1 has no "input"'],
      ['[{"input": {}, "expected": 1, "description": 5}]', 'example 1: "description" must be a string'],
      ['[{"input": {}, "expected": 1}, {"input": {}, "expected": 1, "subscription": null}]', 'example 2: "subscription" must be an object'],
      ['[{"input": {}, "expected": 1, "subscription": []}]', 'example 1: "subscription" must be an object'],
      ['[{"input": {}, "expected": 1, "subscription": "sub_1"}]', 'example 1: "subscription" must be an object'],
    ];
    cases.forEach(([text], n) => {
      write(`t${n}.jsonata`, 'id');
      write(`t${n}.examples.json`, text);
    });
    write('fine.jsonata', 'id');
    write('fine.examples.json', '[{"input": {"id": "evt_1"}, "expected": "evt_1", "description": "named", "subscription": {"id": "sub_1"}}]');
    const reg = open();
    await reg.load();
    const byName = new Map(reg.list().map((t) => [t.name, t]));
    cases.forEach(([, message], n) => {
      expect(byName.get(`t${n}`)?.error, `t${n}`).toMatchObject({ file: `t${n}.examples.json`, code: 'examples_invalid' });
      expect(byName.get(`t${n}`)?.error?.message, `t${n}`).toBe(`t${n}.examples.json: ${message}`);
    });
    expect(byName.get('fine')?.error).toBeUndefined();
    expect(await reg.runExamples('fine')).toEqual([{ name: 'fine', index: 0, description: 'named', expected: 'evt_1', ok: true, actual: 'evt_1' }]);
  });

  it('reads *.jsonata files only, skips hidden files and folders, and lists templates by name', async () => {
    write('b.jsonata', 'id');
    write('a.jsonata', 'id');
    write('notes.txt', 'not a template');
    write('.hidden.jsonata', 'id');
    write('.git/inside.jsonata', 'id');
    write('nested/c.jsonata', 'id');
    fs.mkdirSync(path.join(dir, 'folder.jsonata'));
    const reg = open();
    await reg.load();
    expect(reg.list().map((t) => t.name)).toEqual(['a', 'b', 'nested/c']);
  });

  it('says why a template is not in service, where its mapping has no template, and where an unknown name is asked for', async () => {
    write('broken.jsonata', '{\n  "a": ]\n}');
    const reg = open();
    await reg.load();
    const unavailable = await thrownBy<TemplateError>(() => reg.resolve('broken'));
    expect(unavailable.code).toBe('template_unavailable');
    expect(unavailable.message).toMatch(/^Mapping template "broken" is not in service: /);
    expect(unavailable.details).toEqual([expect.objectContaining({ file: 'broken.jsonata', line: 2, column: expect.any(Number), token: ']' })]);
    expect(() => reg.resolve('missing-template')).toThrow(expect.objectContaining({ code: 'mapping_not_found', details: [{ message: 'no template named "missing-template"' }] }));
    await expect(reg.runExamples('other')).rejects.toMatchObject({ message: `No mapping template named "other" in ${dir}.`, details: [{ message: 'no template named "other"' }] });
    // A template that does not load is reported by its examples run with its position.
    expect(await reg.runExamples('broken')).toEqual([{ name: 'broken', index: null, ok: false, error: expect.objectContaining({ code: 'template_syntax_error', line: 2, token: ']' }) }]);
  });

  it('gives an example\'s error its position only when the template says where', async () => {
    write('positioned.jsonata', '(\n  $error("boom")\n)');
    write('positioned.examples.json', JSON.stringify([{ input: callEnded, expected: 1 }]));
    write('unplaced.jsonata', 'data.missing');
    write('unplaced.examples.json', JSON.stringify([{ input: callEnded, expected: 1 }]));
    const reg = open();
    await reg.load();
    const [positioned, unplaced] = await reg.runExamples();
    expect(positioned.error).toEqual({ code: 'template_runtime_error', message: expect.any(String), line: 2, column: expect.any(Number), token: expect.anything() });
    expect(unplaced.error).toEqual({ code: 'template_undefined_result', message: expect.any(String) });
  });
});

describe('MappingRegistry.watch', () => {
  it('reloads an edited template, keeps the last good version through a broken edit, and drops a deleted one', async () => {
    write('alert.jsonata', '{ "v": 1 }');
    write('nested/deep.jsonata', '{ "deep": 1 }');
    const reg = open();
    await reg.load();
    reg.watch();

    let reloaded = reloadWhere(reg, (e) => e.changed.includes('alert'));
    write('alert.jsonata', '{ "v": 2 }');
    await reloaded;
    expect(await reg.render('alert', callEnded)).toEqual({ v: 2 });

    reloaded = reloadWhere(reg, (e) => e.failed.includes('alert'));
    write('alert.jsonata', '{\n  "v": 3,\n  "w": [1, 2\n}');
    await reloaded;
    expect(await reg.render('alert', callEnded)).toEqual({ v: 2 });
    const info = reg.list().find((t) => t.name === 'alert');
    expect(info).toMatchObject({ active: true, source: '{ "v": 2 }', error: { code: 'template_syntax_error', line: 4, column: 1 } });
    expect(info?.error?.message).toMatch(/^Syntax error at line 4, column 1/);

    reloaded = reloadWhere(reg, (e) => e.changed.includes('alert'));
    write('alert.jsonata', '{ "v": 4 }');
    await reloaded;
    expect(await reg.render('alert', callEnded)).toEqual({ v: 4 });
    expect(reg.list().find((t) => t.name === 'alert')?.error).toBeUndefined();

    reloaded = reloadWhere(reg, (e) => e.changed.includes('nested/deep'));
    write('nested/deep.jsonata', '{ "deep": 2 }');
    await reloaded;
    expect(await reg.render('nested/deep', callEnded)).toEqual({ deep: 2 });

    reloaded = reloadWhere(reg, (e) => e.removed.includes('alert'));
    fs.rmSync(path.join(dir, 'alert.jsonata'));
    await reloaded;
    expect(reg.get('alert')).toBeUndefined();
    expect(() => reg.resolve('alert')).toThrow(expect.objectContaining({ code: 'mapping_not_found' }));
  });

  it('picks up a template in a folder created after watching started', async () => {
    const reg = open();
    await reg.load();
    reg.watch();

    const reloaded = reloadWhere(reg, (e) => e.changed.includes('teams/new/alert'));
    write('teams/new/alert.jsonata', '{ "team": true }');
    await reloaded;
    expect(await reg.render('teams/new/alert', callEnded)).toEqual({ team: true });

    const edited = reloadWhere(reg, (e) => e.changed.includes('teams/new/alert'));
    fs.writeFileSync(path.join(dir, 'teams/new/alert.jsonata'), '{ "team": 2 }'); // in place, no rename
    await edited;
    expect(await reg.render('teams/new/alert', callEnded)).toEqual({ team: 2 });
  });

  it('reloads examples and calls onReload', async () => {
    write('t.jsonata', 'data.call.id');
    const events: ReloadEvent[] = [];
    const reg = open({ onReload: (e) => events.push(e) });
    await reg.load();
    reg.watch();

    const reloaded = reloadWhere(reg, (e) => e.changed.includes('t'));
    write('t.examples.json', JSON.stringify([{ input: callEnded, expected: 'call_abc123' }]));
    await reloaded;
    expect(reg.list()[0].examples).toHaveLength(1);
    expect(events.at(-1)?.changed).toEqual(['t']);
    expect((await reg.runExamples('t'))[0].ok).toBe(true);
  });
});

describe('the load error log line', () => {
  it('shows the offending token (not "[redacted]")', async () => {
    const lines: string[] = [];
    const logger = createLogger('info', new Writable({ write: (chunk, _enc, done) => { lines.push(String(chunk)); done(); } }));
    write('broken.jsonata', '{ "a": data.call.id ) }');
    await open({ logger }).load();
    const logged = lines.map((line) => JSON.parse(line)).find((entry) => entry.template === 'broken');
    expect(logged, lines.join('')).toBeDefined();
    expect(logged.near).toBe(')');
    expect(JSON.stringify(logged)).not.toContain('[redacted]');
  });
});

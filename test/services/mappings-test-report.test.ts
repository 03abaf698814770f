import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { diffLines, formatExampleReport, runMappingsTest } from '../../src/services/mappings-test-report.ts';

const callEnded = { event: 'call.ended', id: 'evt_1', timestamp: '2026-03-15T14:30:00Z', data: { call: { id: 'call_abc123', status: 'completed' } } };

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-mappings-test-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(relative: string, text: string): void {
  fs.mkdirSync(path.dirname(path.join(dir, relative)), { recursive: true });
  fs.writeFileSync(path.join(dir, relative), text);
}

async function run(name?: string): Promise<{ code: number; lines: string[] }> {
  const lines: string[] = [];
  const code = await runMappingsTest({ dir, name, envAllowlist: [], out: (line) => lines.push(line) });
  return { code, lines };
}

describe('runMappingsTest', () => {
  it('exits 0 when every example passes', async () => {
    write('summary.jsonata', '{ "call": data.call.id, "status": data.call.status }');
    write('summary.examples.json', JSON.stringify([{ input: callEnded, expected: { call: 'call_abc123', status: 'completed' } }]));
    write('bare.jsonata', 'data');

    const { code, lines } = await run();

    expect(code).toBe(0);
    expect(lines).toContain('PASS summary example 1 (call.ended)');
    expect(lines).toContain('NOTE bare has no examples (bare.examples.json)');
    expect(lines.at(-1)).toBe('1 passed, 0 failed');
  });

  it('exits 1 on a mismatch and shows the differing lines', async () => {
    write('summary.jsonata', '{ "call": data.call.id, "status": data.call.status }');
    write('summary.examples.json', JSON.stringify([
      { input: callEnded, expected: { call: 'call_abc123', status: 'completed' } },
      { input: callEnded, expected: { call: 'call_abc123', status: 'failed' } },
    ]));

    const { code, lines } = await run();

    expect(code).toBe(1);
    expect(lines).toContain('FAIL summary example 2 (call.ended): output differs from expected');
    expect(lines).toContain('     -   "status": "failed"');
    expect(lines).toContain('     +   "status": "completed"');
    expect(lines).toContain('         "call": "call_abc123",');
    expect(lines.at(-1)).toBe('1 passed, 1 failed');
  });

  it('exits 1 on a template that does not compile, showing where', async () => {
    write('broken.jsonata', '{\n  "a": ( 1 + }\n}');

    const { code, lines } = await run();

    expect(code).toBe(1);
    expect(lines[0]).toBe('FAIL broken: template_syntax_error (line 2, column 14)');
    expect(lines[1]).toContain('Syntax error at line 2, column 14');
    expect(lines.at(-1)).toBe('0 passed, 1 failed');
  });

  it('runs one template by name, and exits 1 for an unknown name or directory', async () => {
    write('a.jsonata', 'id');
    write('a.examples.json', JSON.stringify([{ input: callEnded, expected: 'evt_1' }]));
    write('b.jsonata', 'id');
    write('b.examples.json', JSON.stringify([{ input: callEnded, expected: 'wrong' }]));

    expect((await run('a')).code).toBe(0);
    expect((await run('b')).code).toBe(1);
    const unknown = await run('c');
    expect(unknown.code).toBe(1);
    expect(unknown.lines[0]).toContain('No mapping template named "c"');

    const lines: string[] = [];
    expect(await runMappingsTest({ dir: path.join(dir, 'nope'), envAllowlist: [], out: (l) => lines.push(l) })).toBe(1);
    expect(lines[0]).toContain('No mappings directory');
  });

  it('passes on the shipped starter templates', async () => {
    const lines: string[] = [];
    expect(await runMappingsTest({ dir: path.resolve('mappings'), envAllowlist: [], out: (l) => lines.push(l) })).toBe(0);
    expect(lines.at(-1)).toMatch(/^\d+ passed, 0 failed$/);
  });
});

describe('formatExampleReport', () => {
  it('reports evaluation errors with their position', () => {
    const lines = formatExampleReport([
      { name: 't', index: 0, ok: false, expected: 1, error: { code: 'template_runtime_error', message: 'Template runtime error at line 1, column 5: boom', line: 1, column: 5, token: '+' } },
    ]);
    expect(lines).toEqual([
      'FAIL t example 1: template_runtime_error (line 1, column 5)',
      '     Template runtime error at line 1, column 5: boom',
      '0 passed, 1 failed',
    ]);
  });
});

describe('diffLines', () => {
  it('shows changes with a few lines of context and elides the rest', () => {
    const expected = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'];
    const actual = ['a', 'b', 'c', 'd', 'e', 'F', 'g', 'h', 'i', 'j', 'k'];
    expect(diffLines(expected, actual, 1)).toEqual(['  ...', '  e', '- f', '+ F', '  g', '  ...', '  j', '+ k']);
  });

  it('prints identical inputs as all elided', () => {
    expect(diffLines(['a', 'b'], ['a', 'b'], 0)).toEqual(['  ...']);
  });
});

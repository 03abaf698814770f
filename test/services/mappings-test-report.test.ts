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

    write('c-without-examples.jsonata', 'id');
    const onlyA = await run('a');
    expect(onlyA.code).toBe(0);
    // The NOTE about templates without examples is about the one asked for only.
    expect(onlyA.lines).toEqual(['PASS a example 1 (call.ended)', '1 passed, 0 failed']);
    expect((await run('c-without-examples')).lines).toEqual(['NOTE c-without-examples has no examples (c-without-examples.examples.json)', '0 passed, 0 failed']);
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

describe('formatExampleReport on a mismatch', () => {
  it('prints expected against actual with keys sorted, three lines of context by default, and what is further elided', () => {
    const expected = Object.fromEntries('abcdefghij'.split('').map((k, n) => [k, n]));
    // Another key order, one value changed, one key added: only the real differences show (the
    // last line before the added key gains its comma).
    const actual = { ...Object.fromEntries(Object.entries(expected).reverse()), e: 'five', k: 10 };
    expect(formatExampleReport([{ name: 't', index: 1, description: 'd', ok: false, expected, actual }])).toEqual([
      'FAIL t example 2 (d): output differs from expected',
      '     - expected',
      '     + actual',
      '       ...',
      '         "b": 1,',
      '         "c": 2,',
      '         "d": 3,',
      '     -   "e": 4,',
      '     +   "e": "five",',
      '         "f": 5,',
      '         "g": 6,',
      '         "h": 7,',
      '         "i": 8,',
      '     -   "j": 9',
      '     +   "j": 9,',
      '     +   "k": 10',
      '       }',
      '0 passed, 1 failed',
    ]);
  });

  it('sorts keys at every depth, and prints a missing output as undefined', () => {
    const lines = formatExampleReport([
      { name: 'nested', index: 0, ok: false, expected: { outer: { b: 1, a: [{ y: 1, x: 2 }] } }, actual: { outer: { a: [{ x: 2, y: 1 }], b: 2 } } },
      { name: 'none', index: 0, ok: false, expected: { a: 1 }, actual: undefined },
    ]);
    const changes = lines.filter((l) => /^ {5}[-+] /.test(l) && !['     - expected', '     + actual'].includes(l));
    expect(changes).toEqual(['     -     "b": 1', '     +     "b": 2', '     - {', '     -   "a": 1', '     - }', '     + undefined']);
  });

  it('reports an error without a position as its code alone', () => {
    expect(formatExampleReport([{ name: 't', index: null, ok: false, expected: 1, error: { code: 'template_not_found', message: 'No such template.' } }])).toEqual([
      'FAIL t: template_not_found',
      '     No such template.',
      '0 passed, 1 failed',
    ]);
  });
});

describe('diffLines', () => {
  it('finds the smallest diff: a line dropped at the start and one added at the end, the rest kept', () => {
    expect(diffLines(['a', 'b', 'c', 'd'], ['b', 'c', 'd', 'e'])).toEqual(['- a', '  b', '  c', '  d', '+ e']);
    expect(diffLines(['x', 'a', 'b', 'y', 'c'], ['a', 'b', 'z', 'c', 'w'])).toEqual(['- x', '  a', '  b', '- y', '+ z', '  c', '+ w']);
    // At a change, what goes comes before what comes.
    expect(diffLines(['k', 'old', 'k'], ['k', 'new', 'k'], 0)).toEqual(['  ...', '- old', '+ new', '  ...']);
    expect(diffLines([], ['a'])).toEqual(['+ a']);
    expect(diffLines(['a'], [])).toEqual(['- a']);
  });

  it('prefers keeping lines over removing them: an added first line is an addition, not a rewrite', () => {
    expect(diffLines(['a', 'b'], ['c', 'a', 'b'])).toEqual(['+ c', '  a', '  b']);
    expect(diffLines(['a', 'b', 'c'], ['a', 'x', 'b', 'c'])).toEqual(['  a', '+ x', '  b', '  c']);
  });

  it('on random inputs: rebuilds both sides, keeps a longest common subsequence, and removes before it adds', () => {
    // A seeded generator: the same inputs every run.
    let seed = 19;
    const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648) / 2_147_483_648;
    const lines = () => Array.from({ length: Math.floor(random() * 9) }, () => 'abcd'[Math.floor(random() * 4)]);
    const lcsLength = (a: string[], b: string[]): number => {
      const table = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
      for (let i = a.length - 1; i >= 0; i--) {
        for (let j = b.length - 1; j >= 0; j--) table[i][j] = a[i] === b[j] ? table[i + 1][j + 1] + 1 : Math.max(table[i + 1][j], table[i][j + 1]);
      }
      return table[0][0];
    };
    for (let n = 0; n < 500; n++) {
      const expected = lines();
      const actual = lines();
      const diff = diffLines(expected, actual, Number.MAX_SAFE_INTEGER);
      if (expected.join() === actual.join()) {
        // No change: nothing to show, whatever the context.
        expect(diff).toEqual(expected.length ? ['  ...'] : []);
        continue;
      }
      const kinds = diff.map((line) => line[0]);
      const texts = diff.map((line) => line.slice(2));
      const label = JSON.stringify({ expected, actual, diff });
      expect(texts.filter((_, i) => kinds[i] !== '+'), label).toEqual(expected);
      expect(texts.filter((_, i) => kinds[i] !== '-'), label).toEqual(actual);
      expect(kinds.filter((k) => k === ' ').length, label).toBe(lcsLength(expected, actual));
      expect(kinds.join('').includes('+-'), label).toBe(false);
    }
  });

  it('compares line by line up to 4,000,000 cells (expected × actual lines), and beyond that shows both whole', () => {
    const lines = (n: number, changed: number) => Array.from({ length: n }, (_, i) => (i === changed ? 'changed' : `line ${i}`));
    // 2,000 × 2,000: a real diff, one line changed among unchanged ones.
    expect(diffLines(lines(2_000, -1), lines(2_000, 1_000), 1)).toEqual(['  ...', '  line 999', '- line 1000', '+ changed', '  line 1001', '  ...']);
    // 2,001 × 2,000: past the limit, expected all removed and actual all added.
    const whole = diffLines(lines(2_001, -1), lines(2_000, 1_000), 1);
    expect(whole).toHaveLength(4_001);
    expect(whole.slice(0, 2)).toEqual(['- line 0', '- line 1']);
    expect(whole.slice(2_000, 2_002)).toEqual(['- line 2000', '+ line 0']);
  });


  it('shows changes with a few lines of context and elides the rest', () => {
    const expected = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'];
    const actual = ['a', 'b', 'c', 'd', 'e', 'F', 'g', 'h', 'i', 'j', 'k'];
    expect(diffLines(expected, actual, 1)).toEqual(['  ...', '  e', '- f', '+ F', '  g', '  ...', '  j', '+ k']);
  });

  it('prints identical inputs as all elided', () => {
    expect(diffLines(['a', 'b'], ['a', 'b'], 0)).toEqual(['  ...']);
  });
});

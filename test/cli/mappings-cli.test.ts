import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO_ROOT, tempDir } from '../support/gateway.ts';

/** `sluice mappings test` as an ops engineer runs it: a child process, its exit code and output. */

const SHIPPED = path.join(REPO_ROOT, 'mappings');

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node bin/sluice.js ...args` from the repository root, without the caller's SLUICE_* settings. */
function sluice(...args: string[]): Promise<CliRun> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('SLUICE_')));
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/sluice.js', ...args], { cwd: REPO_ROOT, env, timeout: 15_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const copies: string[] = [];
afterEach(() => {
  for (const dir of copies.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** A temporary copy of the shipped mappings, to edit freely. */
function copyOfShipped(): string {
  const dir = tempDir('sluice-mappings-cli-');
  copies.push(dir);
  fs.cpSync(SHIPPED, dir, { recursive: true });
  return dir;
}

/** How many examples the shipped templates have, all folders included. */
function shippedExampleCount(): number {
  const files = fs.readdirSync(SHIPPED, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.examples.json'));
  return files.reduce((sum, file) => sum + JSON.parse(fs.readFileSync(path.join(SHIPPED, file), 'utf8')).length, 0);
}

function editJson(file: string, edit: (value: any) => void): void {
  const value = JSON.parse(fs.readFileSync(file, 'utf8'));
  edit(value);
  fs.writeFileSync(file, JSON.stringify(value, null, 2));
}

const lines = (text: string) => text.split('\n');

describe('sluice mappings test', () => {
  it('passes on the shipped mappings: exit 0 and a summary line', async () => {
    const run = await sluice('mappings', 'test', '--dir', copyOfShipped());
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const total = shippedExampleCount();
    expect(total).toBeGreaterThan(10);
    expect(lines(run.stdout)).toContain(`${total} passed, 0 failed`);
    expect(run.stdout).not.toContain('FAIL');
    expect(run.stdout).toMatch(/^PASS slack\/default example 1 /m);
  });

  it('exits 1 and prints a diff of expected (-) against actual (+) when an output differs', async () => {
    const dir = copyOfShipped();
    editJson(path.join(dir, 'call-summary.examples.json'), (examples) => {
      examples[0].expected.duration = '4m';
    });
    const run = await sluice('mappings', 'test', '--dir', dir);
    expect(run.code, run.stdout + run.stderr).toBe(1);
    const out = lines(run.stdout);
    expect(out).toContain('FAIL call-summary example 1 (a completed inbound call with summary and recording): output differs from expected');
    expect(out).toContain('     -   "duration": "4m",');
    expect(out).toContain('     +   "duration": "3m",');
    // Only the changed line is marked; its neighbours are context.
    expect(out.filter((line) => /^ {5}[-+] {3}/.test(line))).toEqual(['     -   "duration": "4m",', '     +   "duration": "3m",']);
    expect(out).toContain(`${shippedExampleCount() - 1} passed, 1 failed`);
    // The other example of the same template still passes.
    expect(run.stdout).toMatch(/^PASS call-summary example 2 /m);
  });

  it('exits 1 with the line and column of a template that does not compile', async () => {
    const dir = copyOfShipped();
    fs.writeFileSync(path.join(dir, 'broken.jsonata'), '{\n  "a": data.call.id,\n  "b": ]\n}\n');
    const run = await sluice('mappings', 'test', '--dir', dir);
    expect(run.code, run.stdout + run.stderr).toBe(1);
    expect(lines(run.stdout)).toContain('FAIL broken: template_syntax_error (line 3, column 8)');
    expect(run.stdout).toContain('Syntax error at line 3, column 8: The symbol "]" cannot be used as a unary operator');
    expect(lines(run.stdout)).toContain(`${shippedExampleCount()} passed, 1 failed`);
  });

  it('exits 1 with the position of a runtime error in an example', async () => {
    const dir = copyOfShipped();
    fs.writeFileSync(path.join(dir, 'boom.jsonata'), '{\n  "id": id,\n  "x": $error("boom")\n}\n');
    fs.writeFileSync(path.join(dir, 'boom.examples.json'), JSON.stringify([{ input: { event: 'call.ended', id: 'evt_1' }, expected: { id: 'evt_1' } }]));
    const run = await sluice('mappings', 'test', 'boom', '--dir', dir);
    expect(run.code, run.stdout + run.stderr).toBe(1);
    expect(lines(run.stdout)).toContain('FAIL boom example 1 (call.ended): template_runtime_error (line 3, column 9)');
    expect(lines(run.stdout)).toContain('0 passed, 1 failed');
  });

  it('runs one template when given its name, nested names included', async () => {
    const dir = copyOfShipped();
    // A failure elsewhere does not affect a run of one template.
    editJson(path.join(dir, 'call-summary.examples.json'), (examples) => {
      examples[0].expected.duration = '4m';
    });
    const exampleCount = (name: string) => JSON.parse(fs.readFileSync(path.join(SHIPPED, `${name}.examples.json`), 'utf8')).length;
    const [signal, slack, summary] = await Promise.all([
      sluice('mappings', 'test', 'signal-alert', '--dir', dir),
      sluice('mappings', 'test', 'slack/default', '--dir', dir),
      sluice('mappings', 'test', 'call-summary', '--dir', dir),
    ]);
    expect(signal.code, signal.stdout + signal.stderr).toBe(0);
    expect(lines(signal.stdout).filter((line) => line.startsWith('PASS') || line.startsWith('FAIL')).every((line) => line.startsWith('PASS signal-alert '))).toBe(true);
    expect(lines(signal.stdout)).toContain(`${exampleCount('signal-alert')} passed, 0 failed`);

    expect(slack.code, slack.stdout + slack.stderr).toBe(0);
    expect(lines(slack.stdout)).toContain(`${exampleCount('slack/default')} passed, 0 failed`);

    expect(summary.code).toBe(1);
    expect(lines(summary.stdout)).toContain(`${exampleCount('call-summary') - 1} passed, 1 failed`);
  });

  it('exits 1 for a template name that does not exist, and for a directory that does not exist', async () => {
    const dir = copyOfShipped();
    const unknown = await sluice('mappings', 'test', 'no-such-template', '--dir', dir);
    expect(unknown.code).toBe(1);
    expect(unknown.stdout).toContain('No mapping template named "no-such-template"');

    const missing = await sluice('mappings', 'test', '--dir', path.join(dir, 'not-there'));
    expect(missing.code).toBe(1);
    expect(missing.stdout).toContain('No mappings directory at');
  });
});

import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const run = promisify(execFile);
const FIXTURES = path.resolve('test/support/leak-fixture');

// The suite's test files share a worker's process (vitest.config.ts, `isolate: false`); the guard
// fails a file that leaves process-wide state changed. Run here on two fixture files in a vitest of
// their own: one that leaks each kind of change, one that makes the same changes and undoes them.
it('fails a test file that leaves process-wide state changed, naming each change, and passes one that restores it', async () => {
  const outcome = await run(process.execPath, ['node_modules/vitest/vitest.mjs', 'run', '--config', path.join(FIXTURES, 'vitest.config.ts'), '--reporter', 'verbose'], {
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
    timeout: 60_000,
  }).then(
    () => ({ failed: false, output: '' }),
    (err: { stdout: string; stderr: string }) => ({ failed: true, output: `${err.stdout}\n${err.stderr}` }),
  );
  expect(outcome.failed).toBe(true);
  const output = outcome.output;
  expect(output).toMatch(/FAIL\s+leaky\.fixture\.ts/);
  expect(output).not.toMatch(/FAIL\s+tidy\.fixture\.ts/);
  expect(output).toMatch(/Test Files\s+1 failed \| 1 passed/);
  expect(output).toMatch(/Tests\s+4 passed/);
  for (const change of [
    'process.env.SLUICE_LEAK_FIXTURE added',
    "1 'unhandledRejection' listener(s) added to process",
    'Date.now replaced (a stub or spy not restored)',
    'setInterval replaced (a stub or spy not restored)',
    'fake timers still installed',
  ]) expect(output).toContain(change);
  // Names only: the value of a leaked variable may be a secret.
  expect(output).not.toContain('left behind');
});

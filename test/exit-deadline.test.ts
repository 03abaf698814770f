import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './support/gateway.ts';

/**
 * The shutdown deadline (src/exit-deadline.ts) in a real process: whatever holds the process,
 * it ends by SIGKILL at the deadline; a process that exits in time is left alone.
 */
function runWithDeadline(body: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }> {
  const script = `import { armExitDeadline } from './src/exit-deadline.ts';\n${body}`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk));
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, output })));
}

describe('armExitDeadline', () => {
  it('kills a process whose event loop keeps running past the deadline (the in-process timer), after its last words', async () => {
    const result = await runWithDeadline(`armExitDeadline(300, () => console.log('deadline passed')); setInterval(() => {}, 1000);`);
    expect(result.signal).toBe('SIGKILL');
    expect(result.output).toContain('deadline passed');
  });

  it('kills a process whose main thread is stuck, where no timer of its own can fire (the watchdog process)', async () => {
    const result = await runWithDeadline(`armExitDeadline(300, () => console.log('timer fired')); console.log('stuck'); for (;;) {}`);
    expect(result.signal).toBe('SIGKILL');
    expect(result.output).toContain('stuck');
    expect(result.output).not.toContain('timer fired');
  });

  it('leaves a process that exits in time alone: its own exit code stands', async () => {
    const result = await runWithDeadline(`armExitDeadline(60_000); setTimeout(() => process.exit(3), 50);`);
    expect(result).toMatchObject({ code: 3, signal: null });
  });
});

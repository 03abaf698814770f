import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, tempDir, waitFor } from './support/gateway.ts';
import { freePort, killGateways, spawnGateway, type GatewayProcess } from './support/gateway-process.ts';

/**
 * The README's five-minute walkthrough, run as written: its shell commands are read from the
 * README itself and run with bash and curl, against the gateway started the way it says, with
 * the `sluice receive` receiver it names. Only the placeholders a reader fills in (`sub_…`,
 * `dlv_…`, `whsec_…`) and the ports (free ones instead of 8080 and 9000) are substituted.
 */

const run = promisify(execFile);

/** The walkthrough's commands, in order: continuation lines joined, comments dropped. */
function walkthroughCommands(): string[] {
  const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Five-minute walkthrough'), readme.indexOf('## Configuration'));
  const blocks = [...section.matchAll(/```bash\n([\s\S]*?)```/g)].map((m) => m[1]);
  const commands: string[] = [];
  for (const block of blocks) {
    let current = '';
    for (const raw of block.split('\n')) {
      const line = raw.replace(/\s+#\s.*$/, '').trimEnd();
      if (!current && (line.trim() === '' || line.trim().startsWith('#'))) continue;
      if (line.endsWith('\\')) current += line.slice(0, -1) + ' ';
      else {
        commands.push((current + line).trim());
        current = '';
      }
    }
  }
  return commands;
}

let gateway: GatewayProcess | undefined;
let receiver: ChildProcess | undefined;
afterAll(() => {
  receiver?.kill('SIGKILL');
  killGateways();
});

describe('the README walkthrough', () => {
  it('runs as written', async () => {
    const commands = walkthroughCommands();
    const receiverPort = await freePort();
    const state = { sub: '', secret: '', delivery: '', receiverStatus: 200 };
    let receiverOutput = '';
    const env: Record<string, string> = {};

    const startReceiver = async (command: string) => {
      receiver?.kill('SIGTERM');
      await new Promise((r) => (receiver && receiver.exitCode === null ? receiver.once('exit', r) : r(null)));
      const args = command.replace(/^npx sluice /, '').replace('whsec_…', state.secret).replace('9000', String(receiverPort)).match(/'[^']*'|\S+/g)!.map((a) => a.replace(/^'|'$/g, ''));
      state.receiverStatus = Number(/--status (\d+)/.exec(command)?.[1] ?? 200);
      receiverOutput = '';
      receiver = spawn(process.execPath, ['bin/sluice.js', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      receiver.stdout!.on('data', (c) => (receiverOutput += c));
      receiver.stderr!.on('data', (c) => (receiverOutput += c));
      await waitFor(() => receiverOutput.includes('listening on'), 15_000, `the receiver: ${receiverOutput}`);
    };

    const curl = async (command: string): Promise<any> => {
      const filled = command.replaceAll('sub_…', state.sub).replaceAll('dlv_…', state.delivery).replaceAll('127.0.0.1:9000', `127.0.0.1:${receiverPort}`);
      const { stdout } = await run('bash', ['-c', `${filled} -w '\\n%{http_code}'`], { cwd: REPO_ROOT, env: { PATH: process.env.PATH, SLUICE: gateway!.url, KEY: env.SLUICE_ADMIN_KEY } });
      const [body, status] = [stdout.slice(0, stdout.lastIndexOf('\n')), Number(stdout.slice(stdout.lastIndexOf('\n') + 1))];
      expect(status, `${filled} -> ${body}`).toBeLessThan(300);
      return JSON.parse(body);
    };

    let ran = 0;
    for (const command of commands) {
      ran++;
      if (/npm start$/.test(command)) {
        for (const [, name, value] of command.matchAll(/(SLUICE_\w+)=(\S+)/g)) env[name] = value;
        gateway = await spawnGateway(tempDir(), env);
      } else if (command.startsWith('export ')) {
        expect(command).toContain(`KEY=${env.SLUICE_ADMIN_KEY}`);
      } else if (command.startsWith('npx sluice receive')) {
        await startReceiver(command);
      } else if (/^curl -s \$SLUICE\/api\/v1\/deliveries\/dlv_… /.test(command)) {
        // Reading a delivery: wait until it settles the way the walkthrough says.
        const expected = state.receiverStatus < 300 ? 'delivered' : 'failed';
        const delivery = await waitFor(async () => {
          const d = await curl(command);
          return d.status === expected ? d : undefined;
        }, 20_000, `delivery ${state.delivery} to be ${expected}`);
        if (expected === 'failed') expect(delivery.attempts.map((a: { response: { status: number } }) => a.response.status)).toEqual([500, 500, 500]);
      } else if (command.startsWith('curl ')) {
        const body = await curl(command);
        if (body.signing_secret) [state.sub, state.secret] = [body.id, body.signing_secret];
        if (Array.isArray(body.deliveries)) {
          expect(body.duplicate).toBe(false);
          state.delivery = body.deliveries[0].id;
        }
        if (command.includes('/replay') && command.includes('dlv_')) {
          await waitFor(async () => (await curl(`curl -s $SLUICE/api/v1/deliveries/${state.delivery} -H "Authorization: Bearer $KEY"`)).status === 'delivered', 20_000, 'the replay');
        }
      } else {
        throw new Error(`the walkthrough has a command this test does not know how to run: ${command}`);
      }
    }
    expect(ran).toBeGreaterThanOrEqual(10);
    expect(receiverOutput).toContain('webhook-signature (Standard Webhooks): valid');
    expect(receiverOutput).toContain('X-Webhook-Signature (hex HMAC):        valid');
  }, 120_000);
});

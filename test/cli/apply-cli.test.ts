import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parse } from 'yaml';
import { ADMIN_KEY, startGateway, tempDir, type TestGateway } from '../support/gateway.ts';
import { runSluice } from '../support/cli.ts';

// Each run is a real `node bin/sluice.js` child process against a real gateway over loopback.
vi.setConfig({ testTimeout: 90_000 });

let gw: TestGateway;
let dir: string;
let env: Record<string, string>;
const CRM_TOKEN = 'crm-t0ken-do-not-print';
const QA_PASSWORD = 'qa-passw0rd-do-not-print';

beforeAll(async () => {
  gw = await startGateway();
  dir = tempDir('sluice-apply-');
  env = { SLUICE_URL: gw.url, SLUICE_API_KEY: ADMIN_KEY, CRM_TOKEN, QA_PASSWORD, RECEIVER: 'http://127.0.0.1:9' };
});
afterAll(() => gw.stop());

function writeFile(name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

const SLUICE_YAML = `subscriptions:
  - name: crm-sync
    url: \${RECEIVER}/crm
    events: [call.ended]
    description: CRM sync
    headers:
      X-Team: ops
    auth:
      type: bearer
      token: \${CRM_TOKEN}
    mapping: call-summary
    retry:
      schedule: [0s, 1m, 5m]
  - name: qa-alerts
    url: \${RECEIVER}/qa
    events: [evaluation.completed]
    filter: data.score < 60
    auth: {type: basic, username: qa, password: '\${QA_PASSWORD}'}
    timeout: 5
    ordering: {key: data.conversation_id}
`;

const list = async () => (await gw.api('GET', '/api/v1/webhooks')).body.data as any[];

describe('sluice apply and export', () => {
  it('plans with --dry-run, applies, then changes nothing the second time', async () => {
    const file = writeFile('sluice.yaml', SLUICE_YAML);
    const dry = await runSluice(['apply', '-f', file, '--dry-run'], { env });
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('+ create crm-sync\n    url: "http://127.0.0.1:9/crm"');
    expect(dry.stdout).toContain('    auth: {"type":"bearer","token":"${CRM_TOKEN}"}');
    expect(dry.stdout).toContain('+ create qa-alerts');
    expect(dry.stdout + dry.stderr).not.toContain(CRM_TOKEN);
    expect(await list()).toEqual([]);

    const applied = await runSluice(['apply', '-f', file], { env });
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toMatch(/created crm-sync as sub_\w+; signing secret \(shown once, store it now\): whsec_/);
    expect(applied.stdout).toContain('applied: 2 created, 0 updated, 0 deleted, 0 unchanged');
    const subs = await list();
    expect(subs.map((s) => s.name)).toEqual(['crm-sync', 'qa-alerts']);
    expect(subs[0]).toMatchObject({ url: 'http://127.0.0.1:9/crm', events: ['call.ended'], headers: { 'X-Team': 'ops' }, auth: { type: 'bearer', token: '********' }, mapping: 'call-summary', retry: { schedule: ['0s', '1m', '5m'] } });

    const again = await runSluice(['apply', '-f', file], { env });
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('nothing to change: the gateway matches the file');
    expect((await list()).map((s) => s.updated_at)).toEqual(subs.map((s) => s.updated_at));
  });

  it('exports in the same format with secrets as references, and the export applies as no change (YAML and JSON)', async () => {
    const exported = await runSluice(['export'], { env });
    expect(exported.code).toBe(0);
    expect(exported.stdout).not.toContain(CRM_TOKEN);
    expect(exported.stdout).not.toContain(QA_PASSWORD);
    const doc = parse(exported.stdout);
    expect(doc.subscriptions[0]).toEqual({
      name: 'crm-sync', url: 'http://127.0.0.1:9/crm', events: ['call.ended'], description: 'CRM sync', headers: { 'X-Team': 'ops' },
      auth: { type: 'bearer', token: '${CRM_SYNC_AUTH_TOKEN}' }, mapping: 'call-summary', retry: { schedule: ['0s', '1m', '5m'] },
    });
    expect(doc.subscriptions[1].auth).toEqual({ type: 'basic', username: 'qa', password: '${QA_ALERTS_AUTH_PASSWORD}' });
    expect(doc.subscriptions[1].ordering).toEqual({ key: 'data.conversation_id', on_failure: 'continue' });
    expect(exported.stderr).toContain('set CRM_SYNC_AUTH_TOKEN, QA_ALERTS_AUTH_PASSWORD');

    const roundTrip = { ...env, CRM_SYNC_AUTH_TOKEN: CRM_TOKEN, QA_ALERTS_AUTH_PASSWORD: QA_PASSWORD };
    const yamlFile = writeFile('exported.yaml', exported.stdout);
    const yamlRun = await runSluice(['apply', '-f', yamlFile, '--prune', '--dry-run'], { env: roundTrip });
    expect(yamlRun.stdout).toContain('nothing to change');

    const jsonFile = path.join(dir, 'exported.json');
    expect((await runSluice(['export', '--json', '-o', jsonFile], { env })).code).toBe(0);
    const jsonRun = await runSluice(['apply', '-f', jsonFile, '--prune', '--json'], { env: roundTrip });
    expect(JSON.parse(jsonRun.stdout)).toEqual({ dry_run: false, steps: [], unchanged: ['crm-sync', 'qa-alerts'], signing_secrets: {} });
  });

  it('changes field by field and, with --prune, deletes what the file no longer has, but never REST hooks', async () => {
    const unnamed = await gw.api('POST', '/api/v1/webhooks', { url: 'http://127.0.0.1:9/manual', events: ['lead.created'] });
    const hook = await gw.api('POST', '/api/v1/hooks', { target_url: 'http://127.0.0.1:9/zap', event: 'call.ended' });
    expect(hook.status).toBe(201);
    const changed = SLUICE_YAML.replace('events: [call.ended]', 'events: [call.ended, call.failed]').replace(/  - name: qa-alerts[\s\S]*$/, '');
    const file = writeFile('changed.yaml', changed);

    const withoutPrune = await runSluice(['apply', '-f', file, '--dry-run'], { env });
    expect(withoutPrune.stdout).toContain('~ update crm-sync');
    expect(withoutPrune.stdout).toContain('    events: ["call.ended"] -> ["call.ended","call.failed"]');
    expect(withoutPrune.stdout).not.toContain('- delete');

    const dry = await runSluice(['apply', '-f', file, '--dry-run', '--prune'], { env });
    expect(dry.stdout).toContain('- delete qa-alerts');
    expect(dry.stdout).toContain(`- delete ${unnamed.body.id} (${unnamed.body.id})`);
    expect(dry.stdout).not.toContain(hook.body.id);

    const run = await runSluice(['apply', '-f', file, '--prune'], { env });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('applied: 0 created, 1 updated, 2 deleted, 0 unchanged');
    const after = await list();
    expect(after.map((s) => s.name ?? s.id)).toEqual(['crm-sync', hook.body.id]);
    expect(after[0].events).toEqual(['call.ended', 'call.failed']);
  });

  it('reports every problem of a bad file with its line and column, and changes nothing', async () => {
    const before = await list();
    const file = writeFile('bad.yaml', `subscriptions:
  - name: one
    url: http://127.0.0.1:9/one
    events: [call.ended]
    colour: blue
  - name: one
    url: http://127.0.0.1:9/two
    events: [call.ended]
    auth: {type: bearer, token: '\${NOT_SET_ANYWHERE}'}
  - name: three
    url: http://127.0.0.1:9/three
    events: [call.ended, no.such.event]
    mapping: no-such-template
    auth: {type: bearer, token: literal-secret}
`);
    const res = await runSluice(['apply', '-f', file], { env });
    expect(res.code).toBe(2);
    const lines = res.stderr.split('\n');
    expect(lines, res.stderr).toContain(`${file}:5:13: $.subscriptions[0].colour: is not a known field`);
    expect(lines).toContain(`${file}:6:11: $.subscriptions[1].name: duplicate name "one" (first used by subscriptions[0], line 2)`);
    expect(lines, res.stderr).toContain(`${file}:9:33: $.subscriptions[1].auth.token: the environment variable NOT_SET_ANYWHERE is not set`);
    expect(lines).toContain(`${file}:12:26: $.subscriptions[2].events[1]: "no.such.event" is not an event type in the gateway's catalog`);
    expect(lines.some((l) => l.startsWith(`${file}:13:14: $.subscriptions[2].mapping: no mapping template named "no-such-template"`))).toBe(true);
    expect(lines.some((l) => l.startsWith(`${file}:14:33: $.subscriptions[2].auth.token: is a secret: write a reference to an environment variable such as \${THREE_TOKEN}`))).toBe(true);
    expect(lines.filter((l) => l.startsWith(file))).toHaveLength(6); // each problem once
    expect(res.stderr).toContain('6 problems; nothing was changed');
    expect(res.stderr).not.toContain('literal-secret');
    expect(await list()).toEqual(before);

    const broken = await runSluice(['apply', '-f', writeFile('broken.yaml', 'subscriptions:\n  - name: x\n    events: [call.ended\n')], { env });
    expect(broken.code).toBe(2);
    expect(broken.stderr).toMatch(/broken\.yaml:\d+:\d+: \$: /);
  });

  it('stops at a refusal from the gateway, says where in the file, and the next apply completes', async () => {
    const good = `  - name: first-of-two
    url: http://127.0.0.1:9/a
    events: [lead.created]
`;
    const file = writeFile('partial.yaml', `subscriptions:\n${good}  - name: second-of-two
    url: http://127.0.0.1:9/b
    events: [lead.created]
    mapping: '{"broken": '
`);
    const first = await runSluice(['apply', '-f', file], { env });
    expect(first.code).toBe(1);
    expect(first.stderr).toMatch(new RegExp(`the gateway refused second-of-two: validation_failed .*\\n  ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:8:\\d+: \\$\\.mapping`));
    expect(first.stderr).toContain('run apply again to complete');
    expect((await list()).map((s) => s.name)).toContain('first-of-two');

    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(`'{"broken": '`, `'{"lead": data.lead.id}'`));
    const second = await runSluice(['apply', '-f', file], { env });
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain('applied: 1 created, 0 updated, 0 deleted, 1 unchanged');
  });

  it('keeps a connector\'s default ordering (PagerDuty) when the file leaves it out, and exports it as left out', async () => {
    const pdEnv = { ...env, PD_KEY: 'Rk3yS3cr3t0123456789abcdefABCDEF' };
    const file = writeFile('pagerduty.yaml', `subscriptions:
  - name: pager
    events: [signal.*]
    connector: pagerduty
    connector_options: {routing_key: '\${PD_KEY}', api_base_url: 'http://127.0.0.1:9'}
`);
    const first = await runSluice(['apply', '-f', file], { env: pdEnv });
    expect(first.code, first.stderr).toBe(0);
    const pager = (await list()).find((s) => s.name === 'pager');
    expect(pager.ordering).toMatchObject({ on_failure: 'continue', key: expect.stringContaining('data.conversation_id') });
    const again = await runSluice(['apply', '-f', file, '--dry-run'], { env: pdEnv });
    expect(again.stdout).toContain('nothing to change');
    const exported = parse((await runSluice(['export'], { env })).stdout);
    expect(exported.subscriptions.find((s: { name: string }) => s.name === 'pager')).not.toHaveProperty('ordering');
  });
});

import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { Express } from 'express';
import { REPO_ROOT, startGateway, tempDir, type TestGateway } from '../support/gateway.ts';
import { subscriptionCreateSchema, subscriptionFields } from '../../src/core/api-schemas.ts';

const run = promisify(execFile);

interface LayerLike {
  route?: { path: string | string[]; methods: Record<string, boolean> };
  handle: { stack?: LayerLike[] };
  rawPath?: string | string[];
}

/** Every (METHOD path) the express app registers, mount prefixes included, `:id` as `{id}`. */
function registeredRoutes(app: Express): string[] {
  const out: string[] = [];
  const walk = (stack: LayerLike[], prefix: string) => {
    for (const layer of stack) {
      if (layer.route) {
        for (const p of ([] as string[]).concat(layer.route.path)) {
          for (const method of Object.keys(layer.route.methods)) out.push(`${method.toUpperCase()} ${(prefix + p).replace(/:(\w+)/g, '{$1}')}`);
        }
      } else if (layer.handle.stack) {
        const mount = typeof layer.rawPath === 'string' && layer.rawPath !== '/' ? layer.rawPath : '';
        walk(layer.handle.stack, prefix + mount);
      }
    }
  };
  walk((app as unknown as { router: { stack: LayerLike[] } }).router.stack, '');
  return out;
}

let gw: TestGateway;
let doc: any;

beforeAll(async () => {
  gw = await startGateway();
  const res = await gw.api('GET', '/api/v1/openapi.json', undefined, null);
  expect(res.status).toBe(200);
  doc = res.body;
});
afterAll(() => gw.stop());

describe('GET /api/v1/openapi.json', () => {
  it('is an OpenAPI 3.1 document served without a key, with the bearer scheme', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.components.securitySchemes.apiKey).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.paths['/api/v1/webhooks'].post.security).toEqual([{ apiKey: [] }]);
    expect(doc.paths['/api/v1/openapi.json'].get.security).toEqual([]);
  });

  it('describes exactly the /api/v1 routes the express app registers', () => {
    const registered = registeredRoutes(gw.sluice.app).filter((r) => r.split(' ')[1].startsWith('/api/v1/'));
    const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`));
    expect(registered.length).toBeGreaterThan(20);
    expect(registered.filter((r) => !documented.includes(r))).toEqual([]); // no undocumented route
    expect(documented.filter((r) => !registered.includes(r))).toEqual([]); // no documented route that does not exist
  });

  it('documents every error status each operation can answer, in the one error shape', () => {
    const create = doc.paths['/api/v1/webhooks'].post.responses;
    for (const status of ['400', '401', '403', '409', '413', '415', '422']) expect(create[status].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/Error' });
    expect(doc.paths['/api/v1/deliveries/{id}'].get.responses['404']).toBeDefined();
    expect(doc.components.schemas.Error.required).toEqual(['error']);
  });

  it('embeds the very schemas the validators use: a field of the schema is documented, anything else is refused', async () => {
    // Less the validators' own `errorMessage` sentences, which are not an OpenAPI keyword.
    expect(doc.components.schemas.SubscriptionCreate).toEqual(JSON.parse(JSON.stringify(subscriptionCreateSchema, (k, v) => (k === 'errorMessage' ? undefined : v))));
    expect(Object.keys(doc.components.schemas.SubscriptionCreate.properties).sort()).toEqual(Object.keys(subscriptionFields).sort());
    const refused = await gw.api('POST', '/api/v1/webhooks', { url: 'http://127.0.0.1:9/x', events: ['call.ended'], colour: 'blue' });
    expect(refused.status).toBe(422);
    expect(refused.body.error.details).toContainEqual({ path: '$.colour', message: 'is not a known field' });
  });

  it('matches real responses: a created subscription, a key list and an accepted event validate against their documented schemas', async () => {
    const ajv = new Ajv2020({ strict: false, validateFormats: false });
    const schemas = JSON.parse(JSON.stringify(doc.components.schemas).replaceAll('"#/components/schemas/', '"'));
    for (const [name, schema] of Object.entries(schemas)) ajv.addSchema(schema as object, name);
    const check = (name: string, value: unknown) => {
      const validate = ajv.getSchema(name)!;
      expect(validate(value), `${name}: ${JSON.stringify(validate.errors)}`).toBe(true);
    };
    const created = await gw.api('POST', '/api/v1/webhooks', { name: 'docs-check', url: 'http://127.0.0.1:9/x', events: ['call.ended'], auth: { type: 'bearer', token: 't0ken' } });
    expect(created.status).toBe(201);
    check('SubscriptionWithSecret', created.body);
    check('Subscription', (await gw.api('GET', `/api/v1/webhooks/${created.body.id}`)).body);
    for (const key of (await gw.api('GET', '/api/v1/keys')).body.data) check('ApiKey', key);
    const accepted = await gw.api('POST', '/api/v1/events', { event: 'call.ended', data: JSON.parse(fs.readFileSync(path.join(REPO_ROOT, '../shared/fixtures/events/call.ended.json'), 'utf8')).data });
    expect(accepted.status).toBe(202);
    check('AcceptedEvent', accepted.body);
    const delivery = (await gw.api('GET', `/api/v1/deliveries/${accepted.body.deliveries[0].id}`)).body;
    check('DeliveryDetail', delivery);
  });

  it('lints clean with Redocly (recommended rules: no error, no warning)', async () => {
    const file = path.join(tempDir(), 'openapi.json');
    fs.writeFileSync(file, JSON.stringify(doc, null, 2));
    const cli = path.join(REPO_ROOT, 'node_modules/@redocly/cli/bin/cli.js');
    const { stdout } = await run(process.execPath, [cli, 'lint', file, '--format=json'], {
      env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' },
      timeout: 120_000,
    });
    const report = JSON.parse(stdout.slice(stdout.indexOf('{')));
    expect(report.problems).toEqual([]);
    expect(report.totals).toMatchObject({ errors: 0, warnings: 0 });
  }, 130_000);
});

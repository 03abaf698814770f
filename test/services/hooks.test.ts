import { describe, expect, it } from 'vitest';
import { ConflictError, NotFoundError, TemplateError, ValidationError } from '../../src/errors.ts';
import type { ConnectorDefinition } from '../../src/delivery/connector.ts';
import { HookService, SAMPLE_LIMIT, type HookServiceDeps } from '../../src/services/hooks.ts';
import type { EventRecord, SubscriptionRecord } from '../../src/storage/types.ts';
import { thrownBy } from '../support/error-shape.ts';

/**
 * The REST hooks service on its own, over stand-ins for the subscription service, the event
 * store, the catalog and the renderer: what it asks them for and what it answers. The hooks API
 * over a real gateway is tested in test/http/hooks.test.ts.
 */

const CONNECTORS = new Map<string, ConnectorDefinition>([
  ['zapier', { name: 'zapier', defaultMapping: 'zapier/default' } as ConnectorDefinition],
  ['n8n', { name: 'n8n' } as ConnectorDefinition],
]);

function record(overrides: Partial<SubscriptionRecord> = {}): SubscriptionRecord {
  return {
    id: 'sub_1', url: 'https://hooks.zapier.com/1', events: ['call.ended'], connector: 'zapier', connector_options: { flatten: true },
    filter: null, mapping: null, description: 'REST hook (zapier)', enabled: true, disabled_reason: null, created_at: Date.UTC(2026, 0, 2),
    secret_prefix: 'whsec_ab', source: 'hook',
    ...overrides,
  } as SubscriptionRecord;
}

function event(id: string, name: string, receivedAt: number): EventRecord {
  return { id, event: name, timestamp: '2026-01-02T00:00:00Z', data: { n: id }, received_at: receivedAt } as EventRecord;
}

interface Stand {
  service: HookService;
  created: Record<string, unknown>[];
  removed: string[];
  rendered: { mapping: string; envelope: Record<string, unknown>; view: Record<string, unknown> }[];
}

function stand(options: {
  get?: (id: string) => Promise<SubscriptionRecord>;
  create?: (request: Record<string, unknown>) => Promise<{ record: SubscriptionRecord; secret: string }>;
  remove?: (id: string) => Promise<void>;
  recent?: Record<string, EventRecord[]>;
  render?: HookServiceDeps['render'];
} = {}): Stand {
  const created: Record<string, unknown>[] = [];
  const removed: string[] = [];
  const rendered: Stand['rendered'] = [];
  const subscriptions = {
    get: options.get ?? (async (id: string) => { throw new NotFoundError('Subscription', id); }),
    create: async (request: Record<string, unknown>, source: string) => {
      expect(source).toBe('hook');
      created.push(request);
      return options.create ? options.create(request) : { record: record({ events: request.events as string[] }), secret: 'whsec_secret' };
    },
    remove: async (id: string) => {
      removed.push(id);
      await options.remove?.(id);
    },
  };
  const catalog = {
    matchPattern: (pattern: string) => (pattern === 'call.*' ? ['call.ended', 'call.started'] : pattern === 'call.ended' ? ['call.ended'] : []),
    get: (name: string) => ({ name, example: { event: name, id: 'evt_example', timestamp: '2026-01-01T00:00:00Z', data: { example: true } } }),
  };
  const service = new HookService({
    subscriptions: subscriptions as unknown as HookServiceDeps['subscriptions'],
    storage: { recentEvents: async (name: string, limit: number) => (options.recent?.[name] ?? []).slice(0, limit) },
    catalog: catalog as unknown as HookServiceDeps['catalog'],
    connectors: CONNECTORS,
    render: options.render ?? (async (mapping, envelope, view) => {
      rendered.push({ mapping, envelope, view });
      return { rendered: mapping, id: envelope.id };
    }),
  });
  return { service, created, removed, rendered };
}

const refusal = (promise: Promise<unknown>) => thrownBy<ValidationError>(promise);

describe('HookService.subscribe', () => {
  it('creates a hook subscription in the subscription service\'s words, with a default description per connector', async () => {
    const { service, created } = stand();
    const hook = await service.subscribe({ target_url: 'https://hooks.zapier.com/1', event: 'call.ended' });
    await service.subscribe({ subscription_url: 'https://n8n.example.com/webhook/1', events: ['call.ended', 'lead.created'], connector: 'n8n', filter: 'data.x', mapping: 'm' });
    // Null filter and mapping are left out, not passed on as null.
    await service.subscribe({ target_url: 'https://hooks.zapier.com/2', event: 'call.ended', filter: null, mapping: null, description: 'mine' });
    expect(created).toEqual([
      { url: 'https://hooks.zapier.com/1', events: ['call.ended'], connector: 'zapier', description: 'REST hook (zapier)' },
      { url: 'https://n8n.example.com/webhook/1', events: ['call.ended', 'lead.created'], connector: 'n8n', description: 'REST hook (n8n)', filter: 'data.x', mapping: 'm' },
      { url: 'https://hooks.zapier.com/2', events: ['call.ended'], connector: 'zapier', description: 'mine' },
    ]);
    expect(hook).toEqual({
      id: 'sub_1', target_url: 'https://hooks.zapier.com/1', event: 'call.ended', events: ['call.ended'], connector: 'zapier', filter: null, mapping: null,
      description: 'REST hook (zapier)', enabled: true, disabled_reason: null, created_at: '2026-01-02T00:00:00.000Z', signing_secret_prefix: 'whsec_ab', signing_secret: 'whsec_secret',
    });
  });

  it('names a refused field as the caller sent it: target_url or subscription_url, event or events', async () => {
    const paths = ['$.url', '$.url.host', '$.urlx', '$.events[0]', '$.events[0].x', '$.events[1]', '$.filter', 'x$.events[0]', undefined];
    const failing = () => stand({ create: async () => { throw new ValidationError('no', paths.map((path) => ({ path, message: 'bad' })), 'some_code'); } });
    const single = await refusal(failing().service.subscribe({ subscription_url: 'https://a.example/1', event: 'call.ended' }));
    expect(single).toBeInstanceOf(ValidationError);
    expect(single.code).toBe('some_code');
    expect(single.details.map((d) => d.path)).toEqual(['$.subscription_url', '$.subscription_url.host', '$.urlx', '$.event', '$.event.x', '$.events[1]', '$.filter', 'x$.events[0]', undefined]);
    const several = await refusal(failing().service.subscribe({ target_url: 'https://a.example/1', events: ['call.ended'] }));
    expect(several.details.map((d) => d.path)).toEqual(['$.target_url', '$.target_url.host', '$.urlx', '$.events[0]', '$.events[0].x', '$.events[1]', '$.filter', 'x$.events[0]', undefined]);
    // Other errors pass through as they are.
    const conflict = new ConflictError('taken', 'taken');
    await expect(stand({ create: async () => { throw conflict; } }).service.subscribe({ target_url: 'https://a.example/1', event: 'call.ended' })).rejects.toBe(conflict);
  });

  it('refuses what a trigger node must not send, saying what and where, every problem at once', async () => {
    const { service, created } = stand();
    const detailsOf = async (body: unknown) => (await refusal(service.subscribe(body))).details;
    for (const body of [null, 'x', [1]]) expect(await detailsOf(body)).toEqual([{ path: '$', message: 'must be a JSON object {target_url, event}' }]);
    expect(await detailsOf({})).toEqual([
      { path: '$.target_url', message: 'is required: the URL to deliver events to' },
      { path: '$.event', message: 'is required: an event type such as call.ended (or events: [...])' },
    ]);
    expect(await detailsOf({ target_url: 'https://a.example/1', subscription_url: 'https://a.example/2', event: 'call.ended', events: ['call.ended'], connector: 'slack' })).toEqual([
      { path: '$.subscription_url', message: 'differs from target_url; send one URL (subscription_url is a legacy alias of target_url)' },
      { path: '$.events', message: 'give event or events, not both' },
      { path: '$.connector', message: 'must be one of zapier, n8n; other connectors are configured through POST /api/v1/webhooks' },
    ]);
    // The schema's problems, every one of them.
    expect((await detailsOf({ target_url: 5, event: 7 })).map((d) => d.path)).toEqual(['$.target_url', '$.event']);
    // The same URL under both names is one URL.
    await service.subscribe({ target_url: 'https://a.example/1', subscription_url: 'https://a.example/1', event: 'call.ended' });
    expect(created).toHaveLength(1);
  });
});

describe('HookService.unsubscribe', () => {
  it('deletes a hook; an unknown id, or one deleted meanwhile, is answered as deleted', async () => {
    const hook = stand({ get: async () => record() });
    expect(await hook.service.unsubscribe('sub_1')).toEqual({ id: 'sub_1', deleted: true });
    expect(hook.removed).toEqual(['sub_1']);

    const unknown = stand();
    expect(await unknown.service.unsubscribe('sub_gone')).toEqual({ id: 'sub_gone', deleted: true });
    expect(unknown.removed).toEqual([]);

    const raced = stand({ get: async () => record(), remove: async (id) => { throw new NotFoundError('Subscription', id); } });
    expect(await raced.service.unsubscribe('sub_1')).toEqual({ id: 'sub_1', deleted: true });
  });

  it('refuses to delete a subscription made through /webhooks, and passes on any other failure', async () => {
    const webhook = stand({ get: async () => record({ source: 'api' } as Partial<SubscriptionRecord>) });
    const conflict = await refusal(webhook.service.unsubscribe('sub_1'));
    expect(conflict).toBeInstanceOf(ConflictError);
    expect(conflict.code).toBe('not_a_hook');
    expect(conflict.message).toBe('Subscription sub_1 was not created through the hooks API; delete it with DELETE /api/v1/webhooks/sub_1.');
    expect(webhook.removed).toEqual([]);

    const down = new Error('database down');
    await expect(stand({ get: async () => { throw down; } }).service.unsubscribe('sub_1')).rejects.toBe(down);
    await expect(stand({ get: async () => record(), remove: async () => { throw down; } }).service.unsubscribe('sub_1')).rejects.toBe(down);
  });

  it('shows only hooks by id', async () => {
    expect((await stand({ get: async () => record() }).service.get('sub_1')).target_url).toBe('https://hooks.zapier.com/1');
    const err = await refusal(stand({ get: async () => record({ source: 'api' } as Partial<SubscriptionRecord>) }).service.get('sub_1'));
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err.message).toBe('Hook sub_1 was not found.');
  });
});

describe('HookService.sample', () => {
  const recent = {
    'call.ended': [event('evt_b', 'call.ended', 300), event('evt_a', 'call.ended', 100)],
    'call.started': [event('evt_c', 'call.started', 300), event('evt_d', 'call.started', 200)],
  };

  it('gives the newest events of every type a wildcard covers, newest first (ties: the later id first), at most three', async () => {
    const { service, rendered } = stand({ recent });
    expect(await service.sample({ event: 'call.*' })).toEqual([
      { rendered: 'zapier/default', id: 'evt_c' },
      { rendered: 'zapier/default', id: 'evt_b' },
      { rendered: 'zapier/default', id: 'evt_d' },
    ]);
    expect(SAMPLE_LIMIT).toBe(3);
    // The envelope a delivery renders from, and the connector's view.
    expect(rendered[0]).toEqual({ mapping: 'zapier/default', envelope: { event: 'call.started', id: 'evt_c', timestamp: '2026-01-02T00:00:00Z', data: { n: 'evt_c' } }, view: { connector: 'zapier', options: {} } });
  });

  it('shapes samples through a hook\'s own mapping, else its connector\'s template, else not at all', async () => {
    const withMapping = stand({ recent, get: async () => record({ mapping: 'mine', connector_options: { flatten: true } }) });
    expect(await withMapping.service.sample({ event: 'call.ended', id: 'sub_1' })).toEqual([{ rendered: 'mine', id: 'evt_b' }, { rendered: 'mine', id: 'evt_a' }]);
    expect(withMapping.rendered[0].view).toEqual({ id: 'sub_1', description: 'REST hook (zapier)', connector: 'zapier', options: { flatten: true } });

    const connectorDefault = stand({ recent, get: async () => record() });
    expect((await connectorDefault.service.sample({ event: 'call.ended', id: 'sub_1' }))[0]).toEqual({ rendered: 'zapier/default', id: 'evt_b' });

    // n8n has no default template: the envelope itself.
    const plain = stand({ recent });
    expect(await plain.service.sample({ event: 'call.ended', connector: 'n8n' })).toEqual([
      { event: 'call.ended', id: 'evt_b', timestamp: '2026-01-02T00:00:00Z', data: { n: 'evt_b' } },
      { event: 'call.ended', id: 'evt_a', timestamp: '2026-01-02T00:00:00Z', data: { n: 'evt_a' } },
    ]);
    expect(plain.rendered).toEqual([]);
  });

  it('leaves out events the template cannot render, and stands in the catalog example when none is left', async () => {
    const render: HookServiceDeps['render'] = async (_mapping, envelope) => {
      if (envelope.id === 'evt_b') throw new TemplateError('boom', [], 'template_runtime_error');
      return { id: envelope.id };
    };
    expect(await stand({ recent, render }).service.sample({ event: 'call.ended' })).toEqual([{ id: 'evt_a' }]);
    expect(await stand({ render }).service.sample({ event: 'call.ended' })).toEqual([{ id: 'evt_example' }]);
    const failing: HookServiceDeps['render'] = async () => { throw new TemplateError('boom', [], 'template_runtime_error'); };
    await expect(stand({ recent, render: failing }).service.sample({ event: 'call.ended' })).rejects.toBeInstanceOf(TemplateError);
    // Anything else than a template's failure is the request's failure, even with other samples left.
    const broken = new Error('storage down');
    const brokenOnB: HookServiceDeps['render'] = async (_mapping, envelope) => {
      if (envelope.id === 'evt_b') throw broken;
      return { id: envelope.id };
    };
    await expect(stand({ recent, render: brokenOnB }).service.sample({ event: 'call.ended' })).rejects.toBe(broken);
  });

  it('refuses a missing or unknown event type, an unknown connector and a repeated parameter, saying where', async () => {
    const { service } = stand();
    const detailsOf = async (query: Record<string, unknown>) => (await refusal(service.sample(query))).details;
    for (const query of [{}, { event: '' }]) {
      expect(await detailsOf(query)).toEqual([{ path: 'query.event', message: 'is required: an event type from GET /api/v1/event-types, or a wildcard such as call.*' }]);
    }
    expect(await detailsOf({ event: 'nope.*' })).toEqual([{ path: 'query.event', message: '"nope.*" is not an event type in the catalog (see GET /api/v1/event-types)' }]);
    expect(await detailsOf({ event: 'call.ended', connector: 'slack' })).toEqual([{ path: 'query.connector', message: 'unknown connector; one of zapier, n8n' }]);
    expect(await detailsOf({ event: ['call.ended', 'call.started'] })).toEqual([{ path: 'query.event', message: 'must be given once, as a string' }]);
    expect(await detailsOf({ event: 'call.ended', id: ['a', 'b'] })).toEqual([{ path: 'query.id', message: 'must be given once, as a string' }]);
    expect(await detailsOf({ event: 'call.ended', connector: ['zapier', 'n8n'] })).toEqual([{ path: 'query.connector', message: 'must be given once, as a string' }]);
    // An empty connector or id is as good as none.
    expect(await service.sample({ event: 'call.ended', connector: '', id: '' })).toEqual([{ rendered: 'zapier/default', id: 'evt_example' }]);
  });
});

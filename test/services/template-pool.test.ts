import { afterAll, describe, expect, it } from 'vitest';
import { TemplateError } from '../../src/errors.ts';
import { TemplatePool } from '../../src/services/template-pool.ts';
import { fixture } from '../support/gateway.ts';

describe('TemplatePool (worker threads)', () => {
  const pool = new TemplatePool(2, { timeoutMs: 100 });
  afterAll(() => pool.close());

  it('renders with the same helpers and bindings as the main thread', async () => {
    const event = fixture('call.ended');
    const output = await pool.render('{"id": id, "sub": $subscription.id, "region": $env("REGION"), "took": $formatDuration(data.call.duration)}', event, {
      subscription: { id: 'sub_1' },
      env: { REGION: 'eu' },
    });
    expect(output).toEqual({ id: event.id, sub: 'sub_1', region: 'eu', took: '3m' });
  });

  it('spreads concurrent renders over its threads and answers each with its own result', async () => {
    const outputs = await Promise.all(Array.from({ length: 50 }, (_, i) => pool.render('{"n": data.n * 2}', { data: { n: i } }, {})));
    expect(outputs).toEqual(Array.from({ length: 50 }, (_, i) => ({ n: i * 2 })));
  });

  it('returns template errors with their code and position', async () => {
    const failure = await pool.render('(\n  $x := 1;\n  $error("boom")\n)', {}, {}).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(TemplateError);
    expect((failure as TemplateError).code).toBe('template_runtime_error');
    expect((failure as TemplateError).details[0]).toMatchObject({ line: 3 });
    const undefinedResult = await pool.render('data.missing', {}, {}).catch((e: unknown) => e);
    expect((undefinedResult as TemplateError).code).toBe('template_undefined_result');
  });

  it('stops a runaway template at the time or depth limit', async () => {
    const started = Date.now();
    const failure = await pool.render('($f := function($n){ $f($n+1) }; $f(0))', {}, {}).catch((e: unknown) => e);
    expect((failure as TemplateError).code).toMatch(/^template_(timeout|depth_exceeded)$/);
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});

describe('a gateway with SLUICE_TEMPLATE_THREADS=1', () => {
  it('delivers bodies rendered on the template thread, and records template errors on the attempt', async () => {
    const { startGateway, waitFor } = await import('../support/gateway.ts');
    const { startReceiver } = await import('../support/receiver.ts');
    const rx = await startReceiver();
    const gw = await startGateway({ SLUICE_TEMPLATE_THREADS: '1' });
    try {
      const ok = await gw.api('POST', '/api/v1/webhooks', { url: `${rx.url}/ok`, events: ['call.ended'], mapping: '{"call": data.call.id, "mins": $formatDuration(data.call.duration)}' });
      const bad = await gw.api('POST', '/api/v1/webhooks', { url: `${rx.url}/bad`, events: ['call.ended'], mapping: '$error("no shape for " & event)' });
      expect(ok.status).toBe(201);
      expect(bad.status).toBe(201);
      const posted = await gw.api('POST', '/api/v1/events', fixture('call.ended'));
      expect(posted.status).toBe(202);
      await waitFor(() => rx.requests.length === 1, 5_000, 'the mapped delivery');
      expect(JSON.parse(rx.requests[0].body)).toEqual({ call: 'call_abc123', mins: '3m' });
      const badDelivery = posted.body.deliveries.find((d: { subscription_id: string }) => d.subscription_id === bad.body.id);
      const failed = await waitFor(async () => {
        const d = await gw.api('GET', `/api/v1/deliveries/${badDelivery.id}`);
        return d.body.status === 'failed' ? d.body : undefined;
      }, 5_000, 'the failed delivery');
      expect(failed.attempts).toHaveLength(1);
      expect(failed.attempts[0].error).toMatch(/template error \[template_runtime_error\].*no shape for call\.ended/);
      expect(rx.requests.every((r) => !r.url.startsWith('/bad'))).toBe(true);
    } finally {
      await gw.stop();
      await rx.close();
    }
  });
});

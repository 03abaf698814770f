import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TemplateError } from '../../src/errors.ts';
import { EvaluationPool } from '../../src/services/evaluation-pool.ts';
import { fixture } from '../support/gateway.ts';

const template = (source: string, event: unknown = {}, owner = 'sub_a', bindings = {}) => ({ kind: 'template' as const, source, event, bindings, owner });
const failure = (promise: Promise<unknown>) => promise.then(() => { throw new Error('expected a failure'); }, (err: unknown) => err as TemplateError);

/** A native call jsonata cannot interrupt: $distinct compares every pair, here ~10^9 of them. */
const NATIVE_RUNAWAY = '$distinct([1..90000])';

describe('EvaluationPool', () => {
  const pool = new EvaluationPool({ threads: 2, limits: { timeoutMs: 200 }, heapMb: 32, breaker: { threshold: 3, windowMs: 60_000, cooldownMs: 60_000 } });
  beforeAll(() => pool.ready());
  afterAll(() => pool.close());

  it('evaluates with the same helpers and bindings as the core module', async () => {
    const event = fixture('call.ended');
    const output = await pool.evaluate(template('{"id": id, "sub": $subscription.id, "region": $env("REGION"), "took": $formatDuration(data.call.duration)}', event, 'sub_a', {
      subscription: { id: 'sub_1' },
      env: { REGION: 'eu' },
    }));
    expect(output).toEqual({ id: event.id, sub: 'sub_1', region: 'eu', took: '3m' });
    expect(await pool.evaluate({ kind: 'filter', source: 'data.call.duration > 60', event, bindings: {}, owner: 'sub_a' })).toBe(true);
    expect(await pool.evaluate({ kind: 'filter', source: 'data.call.duration > 6000', event, bindings: {}, owner: 'sub_a' })).toBe(false);
  });

  it('answers concurrent evaluations each with its own result', async () => {
    const inlinedBefore = pool.stats.inlined;
    const outputs = await Promise.all(Array.from({ length: 200 }, (_, i) => pool.evaluate(template('{"n": $abs(data.n) * 2}', { data: { n: i } }, `sub_${i % 7}`))));
    expect(outputs).toEqual(Array.from({ length: 200 }, (_, i) => ({ n: i * 2 })));
    expect(pool.stats.inlined).toBe(inlinedBefore);
  });

  it('runs bounded expressions on small events inline, and everything else in an evaluator', async () => {
    const event = fixture('call.ended');
    const simple = '{"id": id, "call_id": data.call.id, "long": data.call.duration > 60 ? "yes" : "no"}';
    let before = pool.stats.inlined;
    expect(await pool.evaluate(template(simple, event))).toEqual({ id: event.id, call_id: event.data.call.id, long: 'yes' });
    expect(await pool.evaluate({ kind: 'filter', source: 'data.call.duration > 60 and event = "call.ended"', event, bindings: {}, owner: 'sub_a' })).toBe(true);
    expect(pool.stats.inlined).toBe(before + 2);
    // Functions, variables and regexes are never inlined, whatever the event.
    before = pool.stats.inlined;
    for (const source of ['$uppercase(data.call.status)', '$$.id', '$contains(data.call.status, /comp/)', '$subscription.id & id']) {
      await pool.evaluate(template(source, event, 'sub_a', { subscription: { id: 'sub_1' } }));
    }
    expect(pool.stats.inlined).toBe(before);
    // A bounded template over an event larger than its work budget goes to an evaluator too.
    const big = { id: 'evt_big', data: { items: Array.from({ length: 20_000 }, (_, i) => ({ name: `item ${i}` })) } };
    before = pool.stats.inlined;
    expect(await pool.evaluate(template('{"names": data.items.name}', big))).toEqual({ names: big.data.items.map((item) => item.name) });
    expect(pool.stats.inlined).toBe(before);
  });

  it('fails inline evaluations exactly as an evaluator would', async () => {
    const inline = new EvaluationPool({ threads: 1, limits: { timeoutMs: 200 } });
    const remote = new EvaluationPool({ threads: 1, limits: { timeoutMs: 200 }, inlineBudgetBytes: 0 });
    try {
      for (const source of ['data.missing', '"a" + 1', '{"x": data.n}.x.y', 'data.n = ']) {
        const [a, b] = await Promise.all([inline, remote].map((p) => p.evaluate(template(source, { data: { n: 1 } })).then((output) => ({ output }), (err: TemplateError) => ({ code: err.code, message: err.message, details: err.details }))));
        expect(a, source).toEqual(b);
      }
      expect(inline.stats.inlined).toBeGreaterThan(0);
      expect(remote.stats.inlined).toBe(0);
    } finally {
      await Promise.all([inline.close(), remote.close()]);
    }
  });

  it('returns template errors with their code and position', async () => {
    const runtime = await failure(pool.evaluate(template('(\n  $x := 1;\n  $error("boom")\n)')));
    expect(runtime).toBeInstanceOf(TemplateError);
    expect(runtime.code).toBe('template_runtime_error');
    expect(runtime.details[0]).toMatchObject({ line: 3 });
    expect((await failure(pool.evaluate(template('data.missing')))).code).toBe('template_undefined_result');
    expect((await failure(pool.evaluate(template('{"x": $pad("", 60000000)}')))).code).toBe('template_size_exceeded');
  });

  it('kills an evaluator stuck in a native call at the watchdog, and keeps serving others meanwhile', async () => {
    const started = Date.now();
    const stuck = failure(pool.evaluate(template(NATIVE_RUNAWAY, {}, 'sub_runaway')));
    // The other evaluator keeps answering while the first is stuck.
    const others = await Promise.all(Array.from({ length: 20 }, (_, i) => pool.evaluate(template('data.n + 1', { data: { n: i } }, 'sub_ok'))));
    expect(others).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const err = await stuck;
    expect(err.code).toBe('template_timeout');
    expect(err.message).toMatch(/time limit of 200 ms/);
    // Generous bound: only that it was stopped, not run to its end (many seconds).
    expect(Date.now() - started).toBeLessThan(5_000);
    const before = pool.stats.restarts;
    expect(before).toBeGreaterThanOrEqual(1);
    // The replacement evaluator works.
    await pool.ready();
    expect(await pool.evaluate(template('1 + 1'))).toBe(2);
  });

  it('contains evaluations that run out of memory to their evaluator process, every time', async () => {
    // 60,000 flat 2 KB strings, then a sequence holding them: in a worker thread, running out of
    // heap on this shape aborted the whole process (V8's fatal OOM path); a process dies alone.
    const bomb = '{"x": $count([1..60000].$uppercase($pad("", 2000, "x") & $string($)))}';
    // A time limit the bomb cannot reach first, even on a loaded machine.
    const roomy = new EvaluationPool({ threads: 2, limits: { timeoutMs: 30_000 }, heapMb: 32 });
    try {
      await roomy.ready();
      for (let i = 0; i < 3; i++) {
        const err = await failure(roomy.evaluate(template(bomb, {}, `sub_memory_${i}`)));
        expect(err.code).toBe('template_memory_exceeded');
        expect(err.message).toMatch(/ran out of memory \(limit 32 MB\)/);
      }
      await roomy.ready();
      expect(await roomy.evaluate(template('"still here"'))).toBe('still here');
    } finally {
      await roomy.close();
    }
  }, 120_000);
});

describe('EvaluationPool breaker', () => {
  it('suspends a template that keeps hitting its time limit, for that owner and source only', async () => {
    let now = 1_000_000;
    const pool = new EvaluationPool({ threads: 2, limits: { timeoutMs: 100 }, heapMb: 32, breaker: { threshold: 2, windowMs: 60_000, cooldownMs: 30_000 }, now: () => now });
    try {
      await pool.ready();
      const native = template(NATIVE_RUNAWAY, {}, 'sub_bad');
      expect((await failure(pool.evaluate(native))).code).toBe('template_timeout');
      expect((await failure(pool.evaluate(native))).code).toBe('template_timeout');
      const suspended = await failure(pool.evaluate(native));
      expect(suspended.code).toBe('template_suspended');
      expect(suspended.message).toMatch(/suspended until 1970-01-01T00:17:10\.000Z/);
      // Another owner, or a changed template, is not suspended.
      expect(await pool.evaluate(template('"fine"', {}, 'sub_good'))).toBe('fine');
      expect(await pool.evaluate(template('"fixed"', {}, 'sub_bad'))).toBe('fixed');
      // After the cooling-off period the template is tried again.
      now += 30_001;
      expect((await failure(pool.evaluate(native))).code).toBe('template_timeout');
    } finally {
      await pool.close();
    }
  }, 30_000);

  it('never lets one owner hold every ready evaluator: others keep being served while it runs away', async () => {
    const pool = new EvaluationPool({ threads: 2, limits: { timeoutMs: 1_000 }, heapMb: 32 });
    try {
      await pool.ready();
      // Several runaway evaluations of one owner at once, then a stream from another owner.
      let firstRunawaySettled = false;
      const runaways = Array.from({ length: 4 }, () => pool.evaluate(template(NATIVE_RUNAWAY, {}, 'sub_flood')).catch((err: unknown) => {
        firstRunawaySettled = true;
        return err;
      }));
      for (let i = 0; i < 20; i++) {
        // A function call: not the bounded subset, so it really goes to an evaluator.
        expect(await pool.evaluate(template('$abs(data.n)', { data: { n: i } }, 'sub_other'))).toBe(i);
      }
      // The other owner never waited for a runaway: all of its evaluations were answered before
      // even the first runaway one was stopped (at 1 s or later).
      expect(firstRunawaySettled).toBe(false);
      expect(pool.stats.busy).toBe(1);
      await pool.close();
      for (const err of await Promise.all(runaways)) expect(err).toBeInstanceOf(Error);
    } finally {
      await pool.close();
    }
  }, 30_000);
});

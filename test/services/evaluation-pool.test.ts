import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { TemplateError } from '../../src/errors.ts';
import { EvaluationPool } from '../../src/services/evaluation-pool.ts';
import { fixture, waitFor } from '../support/gateway.ts';
import { evaluatorPids } from '../support/processes.ts';
import { thrownBy } from '../support/error-shape.ts';
import { ROOMY_LIMITS } from '../support/limits.ts';

const template = (source: string, event: unknown = {}, owner = 'sub_a', bindings = {}) => ({ kind: 'template' as const, source, event, bindings, owner });
const failure = (promise: Promise<unknown>) => thrownBy<TemplateError>(promise);

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
    // Where an evaluation runs, not how fast: the shared pool's 200 ms limit is for the limit's
    // own tests (a cold evaluator mapping 20,000 items passed it once in CI).
    const pool = new EvaluationPool({ threads: 1, limits: ROOMY_LIMITS });
    onTestFinished(() => pool.close());
    await pool.ready();
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

describe('EvaluationPool lifecycle', () => {
  it('starts its evaluators at once, or, lazy, at the first evaluation that needs one (inline ones do not)', async () => {
    const eager = new EvaluationPool({ threads: 2 });
    const lazy = new EvaluationPool({ threads: 2, lazy: true });
    try {
      expect(eager.stats.threads).toBe(2);
      expect(lazy.stats.threads).toBe(0);
      expect(await lazy.evaluate(template('{"id": id}', { id: 'evt_1' }))).toEqual({ id: 'evt_1' });
      expect(lazy.stats).toMatchObject({ threads: 0, inlined: 1 });
      expect(await lazy.evaluate(template('$uppercase(id)', { id: 'evt_1' }))).toBe('EVT_1');
      expect(lazy.stats.threads).toBe(2);
    } finally {
      await Promise.all([eager.close(), lazy.close()]);
    }
  });

  it('once closed, refuses new evaluations and fails the waiting and running ones with the reason', async () => {
    const pool = new EvaluationPool({ threads: 1, limits: { timeoutMs: 5_000 } });
    await pool.ready();
    const running = failure(pool.evaluate(template(NATIVE_RUNAWAY)));
    await waitFor(() => pool.stats.busy === 1, 20_000, 'the runaway to start');
    const waiting = failure(pool.evaluate(template('$uppercase("x")', {}, 'sub_b')));
    expect(pool.stats.queued).toBe(1);
    await pool.close();
    for (const err of [await running, await waiting, await failure(pool.evaluate(template('$uppercase("y")')))]) {
      expect(err).not.toBeInstanceOf(TemplateError);
      expect((err as Error).message).toBe('the evaluation pool is closed');
    }
    expect(pool.stats.queued).toBe(0);
  });

  it('fails only the evaluation whose evaluator was killed from outside, replaces that evaluator, and closes afterwards', async () => {
    // Evaluators of other pools in this process (another test file's) are not this pool's.
    const others = new Set(evaluatorPids(process.pid));
    const pool = new EvaluationPool({ threads: 1, limits: { timeoutMs: 30_000 } });
    try {
      await pool.ready();
      const victim = failure(pool.evaluate(template(NATIVE_RUNAWAY, {}, 'sub_victim')));
      await waitFor(() => pool.stats.busy === 1, 20_000, 'the runaway to start');
      const mine = evaluatorPids(process.pid).filter((pid) => !others.has(pid));
      expect(mine).toHaveLength(1);
      const [pid] = mine;
      process.kill(pid, 'SIGKILL');
      const err = await victim;
      expect(err.code).toBe('template_runtime_error');
      expect(err.message).toBe('Template evaluation stopped its evaluator (killed by SIGKILL).');
      expect(err.details).toEqual([{ message: 'evaluator process stopped: killed by SIGKILL' }]);
      expect(pool.stats.restarts).toBe(1);
      // Its replacement serves the next evaluation, and the killed one is not among them.
      expect(await pool.evaluate(template('$uppercase("next")'))).toBe('NEXT');
      expect(evaluatorPids(process.pid)).not.toContain(pid);
      expect(pool.stats.threads).toBe(1);
    } finally {
      await pool.close();
    }
  }, 60_000);
});

describe('EvaluationPool limits', () => {
  it('lets an evaluation run its time limit plus the grace (twice the limit, at least 1 s) before the watchdog stops it', async () => {
    const pool = new EvaluationPool({ threads: 1, limits: { timeoutMs: 600 } });
    try {
      await pool.ready();
      const started = Date.now();
      const err = await failure(pool.evaluate(template(NATIVE_RUNAWAY)));
      // 600 ms + 1,200 ms. A lower bound only: a busy machine makes it later, never earlier.
      expect(Date.now() - started).toBeGreaterThanOrEqual(1_790);
      expect(err.code).toBe('template_timeout');
      expect(err.message).toBe('Template evaluation exceeded its time limit of 600 ms.');
      expect(err.details).toEqual([{ message: 'evaluation still running after 600 ms; its evaluator was stopped (a single huge operation?)', limit_ms: 600 }]);
    } finally {
      await pool.close();
    }
  }, 30_000);

  it('divides the inline work budget by the paths an expression reads', async () => {
    const pool = new EvaluationPool({ threads: 1, inlineBudgetBytes: 1_000, lazy: true });
    try {
      const event = { id: 'evt_1', data: { text: 'x'.repeat(300) } };
      // About 330 bytes of event: one path reads 330 (inline), four read 1,320 (an evaluator).
      expect(await pool.evaluate(template('data.text', event))).toBe(event.data.text);
      expect(pool.stats.inlined).toBe(1);
      expect(await pool.evaluate(template('[data.text, data.text, id, data.text]', event))).toEqual([event.data.text, event.data.text, 'evt_1', event.data.text]);
      expect(pool.stats).toMatchObject({ inlined: 1, threads: 1 });
    } finally {
      await pool.close();
    }
  });

  it('gives filters the same answers inline as in an evaluator', async () => {
    const inline = new EvaluationPool({ threads: 1, lazy: true });
    const remote = new EvaluationPool({ threads: 1, inlineBudgetBytes: 0 });
    try {
      for (const source of ['data.n', 'data.missing', '"a"', 'data.n = 1', 'data.n > 1', 'data.list', '[]']) {
        const event = { data: { n: 1, list: [0] } };
        const [a, b] = await Promise.all([inline, remote].map((p) => p.evaluate({ kind: 'filter', source, event, bindings: {}, owner: 'sub_a' }).then((output) => ({ output }), (err: TemplateError) => ({ code: err.code, message: err.message }))));
        expect(a, source).toEqual(b);
        expect(typeof (a as { output?: unknown }).output, source).toBe('boolean');
      }
      expect(inline.stats.inlined).toBe(7);
    } finally {
      await Promise.all([inline.close(), remote.close()]);
    }
  });

  it('counts a time limit met inside an evaluator (by jsonata) towards suspension, as one met by the watchdog', async () => {
    const pool = new EvaluationPool({ threads: 1, limits: { timeoutMs: 20 }, breaker: { threshold: 2, windowMs: 60_000, cooldownMs: 60_000 } });
    try {
      await pool.ready();
      const slow = template('$reduce([1..90000], function($a, $b) { $a + $b })', {}, 'sub_slow');
      for (let i = 0; i < 2; i++) expect((await failure(pool.evaluate(slow))).code).toBe('template_timeout');
      expect(pool.stats.restarts).toBe(0); // jsonata stopped it, not the watchdog
      const suspended = await failure(pool.evaluate(slow));
      expect(suspended.code).toBe('template_suspended');
      expect(suspended.details).toEqual([{ message: expect.stringMatching(/^suspended until \d{4}-\d\d-\d\dT[\d:.]+Z after repeated time or memory limit failures$/), until: expect.stringMatching(/Z$/) }]);
    } finally {
      await pool.close();
    }
  }, 30_000);

  it('does not count a template\'s own errors towards suspension, only its time and memory limits', async () => {
    const pool = new EvaluationPool({ threads: 1, breaker: { threshold: 2, windowMs: 60_000, cooldownMs: 60_000 } });
    try {
      await pool.ready();
      const failing = template('$error("bad data")', {}, 'sub_errors');
      for (let i = 0; i < 4; i++) expect((await failure(pool.evaluate(failing))).code).toBe('template_runtime_error');
    } finally {
      await pool.close();
    }
  });

  it('reports the memory limit it met in the error\'s details', async () => {
    const pool = new EvaluationPool({ threads: 1, limits: { timeoutMs: 30_000 }, heapMb: 32 });
    try {
      await pool.ready();
      const err = await failure(pool.evaluate(template('{"x": $count([1..60000].$uppercase($pad("", 2000, "x") & $string($)))}')));
      expect(err.code).toBe('template_memory_exceeded');
      expect(err.details).toEqual([{ message: 'evaluation needed more than the 32 MB its evaluator may use (building a huge string or array?)', limit_mb: 32 }]);
    } finally {
      await pool.close();
    }
  }, 60_000);
});

describe('EvaluationPool fairness', () => {
  it('lets one owner use all evaluators but one, and an owner that hit a limit only one, while another is ready', async () => {
    const pool = new EvaluationPool({ threads: 3, limits: { timeoutMs: 100 }, graceMs: 30_000, breaker: { threshold: 10, windowMs: 60_000, cooldownMs: 60_000 } });
    const pending: Promise<unknown>[] = [];
    try {
      await pool.ready();
      for (let i = 0; i < 3; i++) pending.push(failure(pool.evaluate(template(NATIVE_RUNAWAY, {}, 'sub_flood'))));
      await waitFor(() => pool.stats.busy === 2, 20_000, 'two of the three to start');
      expect(pool.stats).toMatchObject({ busy: 2, queued: 1 });
      await pool.close();
    } finally {
      await pool.close();
      await Promise.all(pending);
    }

    // An owner the breaker suspects (one time-limit failure, under its threshold): one at a time.
    const suspect = new EvaluationPool({ threads: 3, limits: { timeoutMs: 20 }, breaker: { threshold: 10, windowMs: 60_000, cooldownMs: 60_000 } });
    const held: Promise<unknown>[] = [];
    try {
      await suspect.ready();
      expect((await failure(suspect.evaluate(template('$reduce([1..90000], function($a, $b) { $a + $b })', {}, 'sub_suspect')))).code).toBe('template_timeout');
      for (let i = 0; i < 3; i++) held.push(failure(suspect.evaluate(template(NATIVE_RUNAWAY, {}, 'sub_suspect'))));
      await waitFor(() => suspect.stats.busy === 1, 20_000, 'one to start');
      // Another owner still gets an evaluator at once.
      expect(await suspect.evaluate(template('$uppercase("other")', {}, 'sub_other'))).toBe('OTHER');
      expect(suspect.stats).toMatchObject({ busy: 1, queued: 2 });
    } finally {
      await suspect.close();
      await Promise.all(held);
    }
  }, 60_000);
});

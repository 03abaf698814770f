import { describe, expect, it } from 'vitest';
import { TemplateError } from '../../src/errors.ts';
import {
  compileTemplate,
  evaluateTemplate,
  locateInSource,
  type CompiledTemplate,
} from '../../src/core/mapping.ts';

const callEnded = {
  event: 'call.ended',
  id: 'evt_1',
  timestamp: '2026-03-15T14:30:00Z',
  data: { call: { id: 'call_abc123', duration: 180, status: 'completed' }, summary: 'Customer <b>asked</b> & left' },
};

async function templateError(run: () => unknown): Promise<TemplateError> {
  try {
    await run();
  } catch (err) {
    expect(err).toBeInstanceOf(TemplateError);
    return err as TemplateError;
  }
  throw new Error('expected a TemplateError');
}

describe('compileTemplate', () => {
  it('keeps the source and evaluates against the envelope', async () => {
    const compiled = compileTemplate('{ "call": data.call.id, "event": event }');
    expect(compiled.source).toBe('{ "call": data.call.id, "event": event }');
    expect(await evaluateTemplate(compiled, callEnded)).toEqual({ call: 'call_abc123', event: 'call.ended' });
  });

  it('reports a syntax error with the line, column and token of a multi-line template', async () => {
    const source = '{\n  "id": id,\n  "total": ( 1 + },\n  "x": 2\n}';
    const err = await templateError(() => compileTemplate(source));
    expect(err.code).toBe('template_syntax_error');
    expect(err.status).toBe(422);
    // The stray "}" on line 3: `  "total": ( 1 + }` has it at column 18.
    expect(err.message).toBe('Syntax error at line 3, column 18: The symbol "}" cannot be used as a unary operator');
    expect(err.details).toEqual([
      expect.objectContaining({ line: 3, column: 18, token: '}', position: source.indexOf('+ }') + 3 }),
    ]);
    expect(err.details[0].message).toContain('"}"');
  });

  it('points at the end of the source when the template stops too early', async () => {
    // column 19 is just past the last character of `  "a": $sum(data.x`
    const err = await templateError(() => compileTemplate('{\n  "a": $sum(data.x'));
    expect(err.code).toBe('template_syntax_error');
    expect(err.details[0]).toMatchObject({ line: 2, column: 19, token: '(end)' });
  });

  it('locates positions at the start of the token, after newlines', () => {
    // jsonata positions are the 1-based index of the token's last character.
    expect(locateInSource('a +\nb', 3, '+')).toEqual({ line: 1, column: 3 });
    expect(locateInSource('x\n  $number("a")', 12, 'number')).toEqual({ line: 2, column: 4 });
    expect(locateInSource('ab', 2)).toEqual({ line: 1, column: 2 });
  });
});

describe('evaluateTemplate failures', () => {
  it('turns a runtime error into template_runtime_error with its position', async () => {
    const compiled = compileTemplate('{\n  "n": data.call.id + 1\n}');
    const err = await templateError(() => evaluateTemplate(compiled, callEnded));
    expect(err.code).toBe('template_runtime_error');
    expect(err.message).toMatch(/^Template runtime error at line 2, column 21: The left side of the "\+" operator/);
    expect(err.details[0]).toMatchObject({ line: 2, column: 21, token: '+', jsonata_code: 'T2001' });
  });

  it('reports $error() raised by the template as a runtime error', async () => {
    const err = await templateError(() => evaluateTemplate(compileTemplate('$error("no call id")'), {}));
    expect(err.code).toBe('template_runtime_error');
    expect(err.message).toContain('no call id');
  });

  it('refuses an undefined result', async () => {
    const err = await templateError(() => evaluateTemplate(compileTemplate('data.nothing.here'), callEnded));
    expect(err.code).toBe('template_undefined_result');
    expect(err.message).toBe('The template produced no value for this event.');
  });

  it('refuses a function as the result', async () => {
    const err = await templateError(() => evaluateTemplate(compileTemplate('function($x) { $x }'), callEnded));
    expect(err.code).toBe('template_runtime_error');
  });

  it('stops an endless tail-recursive loop at the time limit', async () => {
    const compiled = compileTemplate('($f := function($n) { $f($n + 1) }; $f(0))');
    const started = performance.now();
    const err = await templateError(() => evaluateTemplate(compiled, {}, {}, { timeoutMs: 20 }));
    const elapsed = performance.now() - started;
    expect(err.code).toBe('template_timeout');
    expect(err.details[0]).toMatchObject({ limit_ms: 20 });
    expect(elapsed).toBeLessThan(1000);
  });

  it('stops a loop hidden inside $eval at the time limit', async () => {
    const compiled = compileTemplate('$eval("($f := function($n) { $f($n + 1) }; $f(0))")');
    const err = await templateError(() => evaluateTemplate(compiled, {}, {}, { timeoutMs: 20 }));
    expect(err.code).toBe('template_timeout');
  });

  it('stops a long mapping over a large range at the time limit', async () => {
    const compiled = compileTemplate('$count([1..99999].($string($) & "x"))');
    const err = await templateError(() => evaluateTemplate(compiled, {}, {}, { timeoutMs: 10 }));
    expect(err.code).toBe('template_timeout');
  });

  it('refuses a huge range at once rather than building it', async () => {
    const started = performance.now();
    const err = await templateError(() => evaluateTemplate(compileTemplate('$count([1..1e7])'), {}));
    expect(err.code).toBe('template_size_exceeded');
    expect(performance.now() - started).toBeLessThan(50);
  });

  it('stops deep non-tail recursion at the depth limit', async () => {
    const compiled = compileTemplate('($f := function($n) { $n = 0 ? 0 : 1 + $f($n - 1) }; $f(100000))');
    const err = await templateError(() => evaluateTemplate(compiled, {}));
    expect(err.code).toBe('template_depth_exceeded');
    expect(err.message).toContain('500');
  });

  it('allows the same recursion when it stays within the depth limit', async () => {
    const compiled = compileTemplate('($f := function($n) { $n = 0 ? 0 : 1 + $f($n - 1) }; $f(20))');
    expect(await evaluateTemplate(compiled, {})).toBe(20);
    // and a smaller limit applies per evaluation, to the same compiled template
    const err = await templateError(() => evaluateTemplate(compiled, {}, {}, { maxDepth: 30 }));
    expect(err.code).toBe('template_depth_exceeded');
  });
});

describe('helpers and bindings', () => {
  const run = (source: string, event: unknown = callEnded, bindings = {}) =>
    evaluateTemplate(compileTemplate(source), event, bindings);

  it('formats durations given in seconds', async () => {
    expect(await run('$formatDuration(data.call.duration)')).toBe('3m');
    expect(await run('$formatDuration(3725)')).toBe('1h 2m 5s');
    expect(await run('{ "d": $formatDuration(data.missing) }')).toEqual({});
  });

  it('truncates by code points, suffix included', async () => {
    expect(await run('$truncate("hello world", 8)')).toBe('hello w…');
    expect(await run('$truncate("hello world", 8, "...")')).toBe('hello...');
    expect(await run('$truncate("short", 8)')).toBe('short');
    expect(await run('$truncate("😀😀😀😀", 3)')).toBe('😀😀…');
    expect(await run('data.summary ~> $truncate(10)')).toBe('Customer …');
  });

  it('escapes Slack mrkdwn control characters', async () => {
    expect(await run('$slackEscape(data.summary)')).toBe('Customer &lt;b&gt;asked&lt;/b&gt; &amp; left');
  });

  it('converts ISO timestamps to unix milliseconds', async () => {
    expect(await run('$isoToUnixMs(timestamp)')).toBe(Date.UTC(2026, 2, 15, 14, 30));
    const err = await templateError(() => run('$isoToUnixMs("next tuesday")'));
    expect(err.code).toBe('template_runtime_error');
    expect(err.message).toContain('not an ISO 8601 timestamp');
  });

  it('reads $subscription and only the allow-listed $env values given', async () => {
    const bindings = { subscription: { id: 'sub_1', description: 'ops alerts' }, env: { REGION: 'eu-west-1' } };
    expect(await run('[$subscription.id, $subscription.description, $env("REGION")]', callEnded, bindings))
      .toEqual(['sub_1', 'ops alerts', 'eu-west-1']);
    expect(await run('{ "secret": $env("SLUICE_MASTER_KEY"), "proto": $env("constructor") }', callEnded, bindings)).toEqual({});
  });

  it('returns plain JSON that does not alias the event', async () => {
    const event = structuredClone(callEnded);
    const out = (await run('data.call', event)) as Record<string, unknown>;
    out.id = 'changed';
    expect(event.data.call.id).toBe('call_abc123');
    const list = await run('[1..3]');
    expect(list).toEqual([1, 2, 3]);
    expect(Object.keys(list as object)).toEqual(['0', '1', '2']);
  });
});

describe('concurrent evaluations of one compiled template', () => {
  it('keep their own bindings', async () => {
    const compiled = compileTemplate('{ "sub": $subscription.id, "region": $env("REGION"), "call": data.call.id }');
    const runs = Array.from({ length: 200 }, (_, i) =>
      evaluateTemplate(compiled, { data: { call: { id: `call_${i}` } } }, { subscription: { id: `sub_${i}` }, env: { REGION: `r${i}` } }));
    const results = await Promise.all(runs);
    results.forEach((result, i) => expect(result).toEqual({ sub: `sub_${i}`, region: `r${i}`, call: `call_${i}` }));
  });

  it('keep their own time budgets: a runaway one times out, its neighbours do not', async () => {
    const shared: CompiledTemplate = compileTemplate('$f ? $f(0) : data.call.id');
    const runaway = compileTemplate('($f := function($n) { $f($n + 1) }; $f(0))');
    // The neighbours' limit is generous so that a loaded machine cannot fail them; what is
    // tested is that the runaway's time is not charged to them, and theirs not to it.
    const neighbours = Array.from({ length: 2000 }, (_, i) =>
      evaluateTemplate(shared, { data: { call: { id: `c${i}` } } }, {}, { timeoutMs: 10_000, maxDepth: 100_000 }));
    const bad = evaluateTemplate(runaway, {}, {}, { timeoutMs: 30, maxDepth: 100_000 }).catch((err: unknown) => err);
    const more = Array.from({ length: 100 }, (_, i) =>
      evaluateTemplate(shared, { data: { call: { id: `d${i}` } } }, {}, { timeoutMs: 10_000, maxDepth: 100_000 }));
    const results = await Promise.all([...neighbours, ...more]);
    expect(results[1999]).toBe('c1999');
    expect(results[2099]).toBe('d99');
    expect(await bad).toMatchObject({ code: 'template_timeout' });
  });
});

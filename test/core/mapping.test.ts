import { describe, expect, it } from 'vitest';
import { TemplateError } from '../../src/errors.ts';
import {
  compileTemplate,
  evaluateTemplate,
  expressionLabel,
  locateInSource,
  type CompiledTemplate,
} from '../../src/core/mapping.ts';
import { ROOMY_LIMITS } from '../support/limits.ts';
import { thrownBy } from '../support/error-shape.ts';

const callEnded = {
  event: 'call.ended',
  id: 'evt_1',
  timestamp: '2026-03-15T14:30:00Z',
  data: { call: { id: 'call_abc123', duration: 180, status: 'completed' }, summary: 'Customer <b>asked</b> & left' },
};

async function templateError(run: () => unknown): Promise<TemplateError> {
  const err = await thrownBy<TemplateError>(run);
  expect(err).toBeInstanceOf(TemplateError);
  return err;
}

describe('compileTemplate', () => {
  it('keeps the source and evaluates against the envelope', async () => {
    const compiled = compileTemplate('{ "call": data.call.id, "event": event }');
    expect(compiled.source).toBe('{ "call": data.call.id, "event": event }');
    expect(await evaluateTemplate(compiled, callEnded, {}, ROOMY_LIMITS)).toEqual({ call: 'call_abc123', event: 'call.ended' });
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
    const err = await templateError(() => evaluateTemplate(compiled, callEnded, {}, ROOMY_LIMITS));
    expect(err.code).toBe('template_runtime_error');
    expect(err.message).toMatch(/^Template runtime error at line 2, column 21: The left side of the "\+" operator/);
    expect(err.details[0]).toMatchObject({ line: 2, column: 21, token: '+', jsonata_code: 'T2001' });
  });

  it('reports $error() raised by the template as a runtime error', async () => {
    const err = await templateError(() => evaluateTemplate(compileTemplate('$error("no call id")'), {}, {}, ROOMY_LIMITS));
    expect(err.code).toBe('template_runtime_error');
    expect(err.message).toContain('no call id');
  });

  it('refuses an undefined result', async () => {
    const err = await templateError(() => evaluateTemplate(compileTemplate('data.nothing.here'), callEnded, {}, ROOMY_LIMITS));
    expect(err.code).toBe('template_undefined_result');
    expect(err.message).toBe('The template produced no value for this event.');
  });

  it('refuses a function as the result', async () => {
    const err = await templateError(() => evaluateTemplate(compileTemplate('function($x) { $x }'), callEnded, {}, ROOMY_LIMITS));
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
    const err = await templateError(() => evaluateTemplate(compileTemplate('$count([1..1e7])'), {}, {}, ROOMY_LIMITS));
    expect(err.code).toBe('template_size_exceeded');
    // Building ten million items takes seconds and hundreds of MB; refusing first takes microseconds.
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('stops deep non-tail recursion at the depth limit', async () => {
    const compiled = compileTemplate('($f := function($n) { $n = 0 ? 0 : 1 + $f($n - 1) }; $f(100000))');
    const err = await templateError(() => evaluateTemplate(compiled, {}, {}, ROOMY_LIMITS));
    expect(err.code).toBe('template_depth_exceeded');
    expect(err.message).toContain('500');
  });

  it('allows the same recursion when it stays within the depth limit', async () => {
    const compiled = compileTemplate('($f := function($n) { $n = 0 ? 0 : 1 + $f($n - 1) }; $f(20))');
    expect(await evaluateTemplate(compiled, {}, {}, ROOMY_LIMITS)).toBe(20);
    // and a smaller limit applies per evaluation, to the same compiled template
    const err = await templateError(() => evaluateTemplate(compiled, {}, {}, { maxDepth: 30 }));
    expect(err.code).toBe('template_depth_exceeded');
  });
});

describe('helpers and bindings', () => {
  const run = (source: string, event: unknown = callEnded, bindings = {}) =>
    evaluateTemplate(compileTemplate(source), event, bindings, ROOMY_LIMITS);

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
      evaluateTemplate(compiled, { data: { call: { id: `call_${i}` } } }, { subscription: { id: `sub_${i}` }, env: { REGION: `r${i}` } }, ROOMY_LIMITS));
    const results = await Promise.all(runs);
    results.forEach((result, i) => expect(result).toEqual({ sub: `sub_${i}`, region: `r${i}`, call: `call_${i}` }));
  });

  it('keep their own time budgets: a runaway one times out, its neighbours do not', async () => {
    const shared: CompiledTemplate = compileTemplate('$f ? $f(0) : data.call.id');
    const runaway = compileTemplate('($f := function($n) { $f($n + 1) }; $f(0))');
    // The neighbours' limit is generous so that a loaded machine cannot fail them; what is
    // tested is that the runaway's time is not charged to them, and theirs not to it.
    const neighbours = Array.from({ length: 2000 }, (_, i) =>
      evaluateTemplate(shared, { data: { call: { id: `c${i}` } } }, {}, { ...ROOMY_LIMITS, maxDepth: 100_000 }));
    const bad = evaluateTemplate(runaway, {}, {}, { timeoutMs: 30, maxDepth: 100_000 }).catch((err: unknown) => err);
    const more = Array.from({ length: 100 }, (_, i) =>
      evaluateTemplate(shared, { data: { call: { id: `d${i}` } } }, {}, { ...ROOMY_LIMITS, maxDepth: 100_000 }));
    const results = await Promise.all([...neighbours, ...more]);
    expect(results[1999]).toBe('c1999');
    expect(results[2099]).toBe('d99');
    expect(await bad).toMatchObject({ code: 'template_timeout' });
  });
});

describe('limits and plain output', () => {
  it('has documented default limits', async () => {
    const { DEFAULT_EVALUATION_LIMITS } = await import('../../src/core/mapping.ts');
    expect(DEFAULT_EVALUATION_LIMITS).toEqual({ timeoutMs: 100, maxDepth: 500, maxSequence: 100_000, maxOutputBytes: 1_000_000 });
    expect(Object.isFrozen(DEFAULT_EVALUATION_LIMITS)).toBe(true);
  });

  it('refuses output larger than maxOutputBytes as JSON, and accepts it at the limit', async () => {
    const compiled = compileTemplate('{"s": data.s}');
    const event = { data: { s: 'x'.repeat(100) } };
    // {"s":"xxx…"} is 100 + 8 characters.
    expect(await evaluateTemplate(compiled, event, {}, { maxOutputBytes: 108 })).toEqual({ s: 'x'.repeat(100) });
    const err = await templateError(() => evaluateTemplate(compiled, event, {}, { maxOutputBytes: 107 }));
    expect(err.code).toBe('template_size_exceeded');
    expect(err.message).toBe('Template output is larger than its limit of 107 bytes.');
    expect(err.details).toEqual([{ message: 'the output is 108 bytes as JSON, over the limit of 107', limit: 107 }]);
  });

  it('returns plain JSON: functions left out, undefined array items as null, sequences as arrays', async () => {
    const out = await evaluateTemplate(compileTemplate('{"f": function($x) { $x }, "n": 1, "list": [1, $uppercase, 2], "seq": data.items.id}'), {
      data: { items: [{ id: 'a' }, { id: 'b' }] },
    }, {}, ROOMY_LIMITS);
    expect(out).toEqual({ n: 1, list: [1, 2], seq: ['a', 'b'] });
    expect(Object.keys(out as object)).toEqual(['n', 'list', 'seq']);
    expect(Array.isArray((out as { seq: unknown }).seq)).toBe(true);
    expect(Object.keys((out as { seq: object }).seq)).toEqual(['0', '1']);
    expect(await evaluateTemplate(compileTemplate('[1, data.missing, 2]'), { data: {} }, {}, ROOMY_LIMITS)).toEqual([1, 2]);
    expect(await evaluateTemplate(compileTemplate('"text"'), {}, {}, ROOMY_LIMITS)).toBe('text');
    expect(await evaluateTemplate(compileTemplate('null'), {}, {}, ROOMY_LIMITS)).toBeNull();
  });

  it('refuses a lambda result, whatever its shape', async () => {
    for (const source of ['function($x) { $x }', '$uppercase']) {
      const err = await templateError(() => evaluateTemplate(compileTemplate(source), {}, {}, ROOMY_LIMITS));
      expect(err.code).toBe('template_runtime_error');
      expect(err.message).toBe('The template produced a function, not a JSON value.');
    }
  });

  it('refuses a sequence over maxSequence, naming the size', async () => {
    const err = await templateError(() => evaluateTemplate(compileTemplate('$count([1..200])'), {}, {}, { maxSequence: 100 }));
    expect(err.code).toBe('template_size_exceeded');
    expect(err.message).toBe('Template evaluation built a sequence larger than 100 items.');
    expect(err.details[0]).toMatchObject({ limit: 100 });
    expect(await evaluateTemplate(compileTemplate('$count([1..100])'), {}, {}, { maxSequence: 100 })).toBe(100);
  });

  it('names the depth and time limits in messages and details', async () => {
    const deep = await templateError(() => evaluateTemplate(compileTemplate('($f := function($n) { $n = 0 ? 0 : 1 + $f($n - 1) }; $f(100))'), {}, {}, { maxDepth: 30 }));
    expect(deep.message).toBe('Template evaluation exceeded its depth limit of 30.');
    expect(deep.details).toEqual([{ message: 'evaluation nested deeper than 30 steps (a recursion that does not end?)', limit: 30 }]);
    const slow = await templateError(() => evaluateTemplate(compileTemplate('($f := function($n) { $f($n + 1) }; $f(0))'), {}, {}, { timeoutMs: 15 }));
    expect(slow.code).toBe('template_timeout');
    expect(slow.message).toBe('Template evaluation exceeded its time limit of 15 ms.');
    expect(slow.details).toEqual([{ message: 'evaluation stopped after 15 ms (an unbounded loop or recursion?)', limit_ms: 15 }]);
  });
});

describe('$pad under the output limit', () => {
  const pad = (source: string, limits = {}) => evaluateTemplate(compileTemplate(source), {}, {}, limits);

  it('pads right for a positive width and left for a negative one, in code points', async () => {
    expect(await pad('$pad("ab", 5)')).toBe('ab   ');
    expect(await pad('$pad("ab", -5)')).toBe('   ab');
    expect(await pad('$pad("ab", 5, "#")')).toBe('ab###');
    expect(await pad('$pad("ab", 5, "")')).toBe('ab   ');
    expect(await pad('$pad("ab", 7, "xy")')).toBe('abxyxyx');
    expect(await pad('$pad("ab", -6, "😀-")')).toBe('😀-😀-ab');
    expect(await pad('$pad("😀😀", 3)')).toBe('😀😀 ');
    expect(await pad('$pad("abc", 2)')).toBe('abc');
    expect(await pad('$pad("abc", 3)')).toBe('abc');
    expect(await pad('$pad("ab", 4.9)')).toBe('ab  ');
    expect(await pad('{"p": $pad(data.missing, 4)}')).toEqual({});
  });

  it('refuses a width over the limit before building the string', async () => {
    expect(await pad('$length($pad("", 50))', { maxOutputBytes: 50 })).toBe(50);
    const err = await templateError(() => pad('$pad("", -51)', { maxOutputBytes: 50 }));
    expect(err.code).toBe('template_size_exceeded');
    expect(err.message).toBe('Template evaluation built a string longer than its limit of 50 characters.');
    expect(err.details).toEqual([{ message: 'a string of 51 characters exceeds the limit of 50', limit: 50 }]);
    const inEval = await templateError(() => pad('$eval(\'$pad("", 60)\')', { maxOutputBytes: 50 }));
    expect(inEval.code).toBe('template_size_exceeded');
  });
});

describe('mapping: details of each failure', () => {
  const failure = async (source: string, limits = {}) => {
    const err = await templateError(() => evaluateTemplate(compileTemplate(source), callEnded, {}, limits));
    return { code: err.code, message: err.message, details: err.details };
  };

  it('names each kind of expression in its messages', () => {
    expect(['template', 'filter', 'ordering_key', 'route'].map((kind) => expressionLabel(kind as Parameters<typeof expressionLabel>[0]))).toEqual([
      'Template', 'Filter', 'Ordering key', 'Filter or ordering key',
    ]);
  });

  it('says why no value or a function is refused', async () => {
    expect(await failure('data.missing')).toEqual({
      code: 'template_undefined_result',
      message: 'The template produced no value for this event.',
      details: [{ message: 'the template produced no value for this event (every path it reads may be missing)' }],
    });
    expect(await failure('$string')).toEqual({
      code: 'template_runtime_error',
      message: 'The template produced a function, not a JSON value.',
      details: [{ message: 'the template produced a function, not a JSON value' }],
    });
  });

  it('leaves functions out of arrays, native and lambda alike', async () => {
    expect(await evaluateTemplate(compileTemplate('[1, $string, function($x){$x}, 2]'), callEnded, {}, ROOMY_LIMITS)).toEqual([1, 2]);
    expect(await evaluateTemplate(compileTemplate('{"k": [1, $string]}'), callEnded, {}, ROOMY_LIMITS)).toEqual({ k: [1] });
    // null items are kept as they are (they are no function to look into).
    expect(await evaluateTemplate(compileTemplate('[1, null, "x", false]'), callEnded, {}, ROOMY_LIMITS)).toEqual([1, null, 'x', false]);
  });

  it('gives a helper failure its position and token, and no jsonata code it does not have', async () => {
    expect((await failure('$truncate("x", -1)')).details).toStrictEqual([
      { message: '$truncate: the maximum length must be a whole number >= 0, got -1', line: 1, column: 2, token: 'truncate', position: 10 },
    ]);
  });

  it('names the sequence size for a range over the range operator limit too', async () => {
    expect(await failure('[1..20000000]')).toEqual({
      code: 'template_size_exceeded',
      message: 'Template evaluation built a sequence larger than 100000 items.',
      details: [{ message: 'a sequence of 20000000 items exceeds the limit of 100000', limit: 100_000 }],
    });
    expect((await failure('$count([1..200000])')).details).toEqual([{ message: 'a sequence of 200000 items exceeds the limit of 100000', limit: 100_000 }]);
  });

  it('reports an unsupported regex with jsonata code S0999', async () => {
    const err = await templateError(() => compileTemplate('$match(data.summary, /(a)\\1/)'));
    expect(err.code).toBe('template_syntax_error');
    expect(err.details[0]).toMatchObject({ jsonata_code: 'S0999', token: '/(a)\\1/' });
  });

  it('takes a time limit that is zero, negative or not finite as none', async () => {
    for (const timeoutMs of [0, -1, Number.POSITIVE_INFINITY, Number.NaN]) {
      expect(await evaluateTemplate(compileTemplate('data.call.duration + 1'), callEnded, {}, { timeoutMs })).toBe(181);
    }
  });
});

describe('locateInSource: positions jsonata gives past or before the token', () => {
  it('clamps a position past the end to the end of the source', () => {
    expect(locateInSource('ab', 10)).toEqual({ line: 1, column: 3 });
    // Exactly one past the end: the end, even when the token appears earlier.
    expect(locateInSource('ab', 3, 'b')).toEqual({ line: 1, column: 3 });
  });

  it('finds a token that ends a character or two before the position, from the start of the source', () => {
    expect(locateInSource('sum(x)', 4, 'sum')).toEqual({ line: 1, column: 1 });
    expect(locateInSource('f(x)', 3, 'f')).toEqual({ line: 1, column: 1 });
  });

  it('falls back to the character before the position when the token is further away or absent', () => {
    expect(locateInSource('ab x cd', 7, 'ab')).toEqual({ line: 1, column: 7 });
    expect(locateInSource('abc def', 5, 'zz')).toEqual({ line: 1, column: 5 });
    // Only a token before the position counts, not one that starts at it.
    expect(locateInSource('ab zz', 3, 'zz')).toEqual({ line: 1, column: 3 });
  });
});

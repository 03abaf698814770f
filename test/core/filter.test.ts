import { describe, expect, it } from 'vitest';
import { TemplateError } from '../../src/errors.ts';
import { compileFilter, evaluateFilter, jsonataBoolean } from '../../src/core/mapping.ts';
import { ROOMY_LIMITS } from '../support/limits.ts';

const callEnded = { event: 'call.ended', id: 'evt_1', timestamp: '2026-03-15T14:30:00Z', data: { call: { status: 'completed' } } };
const evaluation = (score?: number) => ({
  event: 'evaluation.completed', id: 'evt_2', timestamp: '2026-04-27T17:42:17Z',
  data: score === undefined ? { agent: 'jordan.t' } : { agent: 'jordan.t', score },
});
const signal = (severity: string) => ({ event: 'signal.frustration_spike', id: 'evt_3', timestamp: '2026-04-27T17:45:03Z', data: { severity } });

const matches = (filter: string, event: unknown, bindings = {}) => evaluateFilter(compileFilter(filter), event, bindings, ROOMY_LIMITS);

describe('filters', () => {
  it('matches on an equal field', async () => {
    expect(await matches('data.call.status = "completed"', callEnded)).toBe(true);
    expect(await matches('data.call.status = "failed"', callEnded)).toBe(false);
  });

  it('compares numbers', async () => {
    expect(await matches('data.score < 60', evaluation(42))).toBe(true);
    expect(await matches('data.score < 60', evaluation(94))).toBe(false);
  });

  it('does not match when the field is missing', async () => {
    expect(await matches('data.score < 60', evaluation())).toBe(false);
    expect(await matches('data.call.status = "completed"', evaluation())).toBe(false);
  });

  it('matches membership with in', async () => {
    const filter = 'data.severity in ["high", "critical"]';
    expect(await matches(filter, signal('critical'))).toBe(true);
    expect(await matches(filter, signal('high'))).toBe(true);
    expect(await matches(filter, signal('low'))).toBe(false);
  });

  it('combines conditions and reads the event name', async () => {
    expect(await matches('$contains(event, "call.") and data.call.status != "failed"', callEnded)).toBe(true);
    expect(await matches('event = "call.failed" or $exists(data.score)', callEnded)).toBe(false);
  });

  it('reads $subscription and $env', async () => {
    const bindings = { subscription: { id: 'sub_1' }, env: { MIN_SCORE: '60' } };
    expect(await matches('data.score < $number($env("MIN_SCORE"))', evaluation(50), bindings)).toBe(true);
    expect(await matches('$subscription.id = "sub_1"', evaluation(50), bindings)).toBe(true);
  });

  it('casts non-boolean results the way $boolean does', async () => {
    expect(await matches('data.call.status', callEnded)).toBe(true); // non-empty string
    expect(await matches('""', callEnded)).toBe(false);
    expect(await matches('0', callEnded)).toBe(false);
    expect(await matches('data.call', callEnded)).toBe(true); // non-empty object
    expect(await matches('{}', callEnded)).toBe(false);
    expect(await matches('[]', callEnded)).toBe(false);
    expect(await matches('[0, ""]', callEnded)).toBe(false);
    expect(await matches('[0, 1]', callEnded)).toBe(true);
    expect(await matches('null', callEnded)).toBe(false);
  });

  it('agrees with JSONata $boolean', () => {
    expect(jsonataBoolean(undefined)).toBeUndefined();
    expect(jsonataBoolean([[false], 'x'])).toBe(true);
    expect(jsonataBoolean([[]])).toBe(false);
  });

  it('reports a syntax error as filter_syntax_error with its position', () => {
    try {
      compileFilter('data.score <');
      throw new Error('expected a TemplateError');
    } catch (err) {
      expect(err).toBeInstanceOf(TemplateError);
      expect((err as TemplateError).code).toBe('filter_syntax_error');
      expect((err as TemplateError).details[0]).toMatchObject({ line: 1, token: '(end)' });
    }
  });

  it('reports a runtime error as filter_runtime_error', async () => {
    const err = await matches('data.severity + 1 > 2', signal('high')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TemplateError);
    expect(err).toMatchObject({ code: 'filter_runtime_error' });
    expect((err as TemplateError).message).toMatch(/^Filter runtime error at line 1, column 15/);
  });

  it('times out as filter_timeout', async () => {
    const compiled = compileFilter('($f := function($n) { $f($n + 1) }; $f(0))');
    const err = await evaluateFilter(compiled, callEnded, {}, { timeoutMs: 10 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'filter_timeout' });
  });
});

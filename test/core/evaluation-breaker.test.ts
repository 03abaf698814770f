import { describe, expect, it } from 'vitest';
import { DEFAULT_BREAKER_OPTIONS, EvaluationBreaker } from '../../src/core/evaluation-breaker.ts';

const SECOND = 1_000;

describe('EvaluationBreaker', () => {
  it('by default opens after 3 limit failures within a minute, for a minute', () => {
    expect(DEFAULT_BREAKER_OPTIONS).toEqual({ threshold: 3, windowMs: 60 * SECOND, cooldownMs: 60 * SECOND });
    expect(Object.isFrozen(DEFAULT_BREAKER_OPTIONS)).toBe(true);
    const breaker = new EvaluationBreaker();
    expect(breaker.recordFailure('sub_1', 'tpl', 0)).toBeUndefined();
    expect(breaker.recordFailure('sub_1', 'tpl', 10 * SECOND)).toBeUndefined();
    expect(breaker.openUntil('sub_1', 'tpl', 10 * SECOND)).toBeUndefined();
    expect(breaker.recordFailure('sub_1', 'tpl', 20 * SECOND)).toBe(80 * SECOND);
    expect(breaker.openUntil('sub_1', 'tpl', 20 * SECOND)).toBe(80 * SECOND);
    expect(breaker.openUntil('sub_1', 'tpl', 80 * SECOND - 1)).toBe(80 * SECOND);
  });

  it('takes partial options over the defaults', () => {
    const breaker = new EvaluationBreaker({ threshold: 1 });
    expect(breaker.recordFailure('o', 's', 5)).toBe(5 + 60 * SECOND);
    const slow = new EvaluationBreaker({ threshold: 2, cooldownMs: 7 });
    expect(slow.recordFailure('o', 's', 0)).toBeUndefined();
    expect(slow.recordFailure('o', 's', 59 * SECOND)).toBe(59 * SECOND + 7);
  });

  it('counts only failures younger than the window', () => {
    const breaker = new EvaluationBreaker({ threshold: 3, windowMs: 60 * SECOND, cooldownMs: 10 * SECOND });
    breaker.recordFailure('o', 's', 0);
    breaker.recordFailure('o', 's', 30 * SECOND);
    // The first failure is exactly a window old: it no longer counts.
    expect(breaker.recordFailure('o', 's', 60 * SECOND)).toBeUndefined();
    expect(breaker.recordFailure('o', 's', 60 * SECOND + 1)).toBe(70 * SECOND + 1);
  });

  it('closes at the cooldown end, then half-open: one more failure reopens it, unless the window passed first', () => {
    const breaker = new EvaluationBreaker({ threshold: 3, windowMs: 60 * SECOND, cooldownMs: 10 * SECOND });
    for (const t of [0, 1, 2]) breaker.recordFailure('o', 's', t);
    expect(breaker.openUntil('o', 's', 10 * SECOND + 2)).toBeUndefined();
    expect(breaker.openUntil('o', 's', 10 * SECOND + 3)).toBeUndefined();
    expect(breaker.recordFailure('o', 's', 11 * SECOND)).toBe(21 * SECOND);
    expect(breaker.openUntil('o', 's', 21 * SECOND)).toBeUndefined();
    // Closed again at 21 s; a failure a whole window later starts a fresh run.
    expect(breaker.recordFailure('o', 's', 81 * SECOND)).toBeUndefined();
    expect(breaker.recordFailure('o', 's', 82 * SECOND)).toBeUndefined();
    expect(breaker.recordFailure('o', 's', 83 * SECOND)).toBe(93 * SECOND);
  });

  it('a success ends the run of failures of that source only', () => {
    const breaker = new EvaluationBreaker({ threshold: 2 });
    breaker.recordSuccess('o', 's');
    breaker.recordFailure('o', 's', 0);
    breaker.recordFailure('o', 'other', 0);
    breaker.recordSuccess('o', 's');
    expect(breaker.recordFailure('o', 's', 1)).toBeUndefined();
    expect(breaker.recordFailure('o', 'other', 1)).toBe(60 * SECOND + 1);
  });

  it('keeps owners and sources apart, even when their names run together', () => {
    const breaker = new EvaluationBreaker({ threshold: 2 });
    breaker.recordFailure('ab', 'c', 0);
    expect(breaker.recordFailure('a', 'bc', 0)).toBeUndefined();
    expect(breaker.recordFailure('ab', 'd', 0)).toBeUndefined();
    expect(breaker.recordFailure('ab', 'c', 0)).toBe(60 * SECOND);
    expect(breaker.openUntil('ab', 'c', 0)).toBe(60 * SECOND);
    expect(breaker.openUntil('a', 'bc', 0)).toBeUndefined();
    expect(breaker.openUntil('ab', 'd', 0)).toBeUndefined();
  });

  it('marks an owner suspect for a window after any failure, whatever the source', () => {
    const breaker = new EvaluationBreaker({ windowMs: 30 * SECOND });
    expect(breaker.isSuspect('o', 0)).toBe(false);
    breaker.recordFailure('o', 'x', 0);
    breaker.recordFailure('p', 'x', 0);
    expect(breaker.isSuspect('o', 0)).toBe(true);
    expect(breaker.isSuspect('o', 30 * SECOND - 1)).toBe(true);
    expect(breaker.isSuspect('q', 1)).toBe(false);
    // A later failure extends it.
    breaker.recordFailure('o', 'y', 20 * SECOND);
    expect(breaker.isSuspect('o', 49 * SECOND)).toBe(true);
    expect(breaker.isSuspect('o', 50 * SECOND)).toBe(false);
    expect(breaker.isSuspect('o', 1)).toBe(false); // forgotten once expired
    expect(breaker.isSuspect('p', 30 * SECOND)).toBe(false);
    // A success does not clear suspicion.
    breaker.recordFailure('r', 'x', 100 * SECOND);
    breaker.recordSuccess('r', 'x');
    expect(breaker.isSuspect('r', 100 * SECOND)).toBe(true);
  });

  it('remembers at most 10 000 keys, forgetting the oldest first', () => {
    const opened = new EvaluationBreaker({ threshold: 1 });
    opened.recordFailure('first', 's', 0);
    for (let i = 0; i < 10_000; i++) opened.recordFailure(`o${i}`, 's', 0);
    expect(opened.openUntil('first', 's', 0)).toBeUndefined();
    expect(opened.openUntil('o0', 's', 0)).toBe(60 * SECOND);
    expect(opened.openUntil('o9999', 's', 0)).toBe(60 * SECOND);
    expect(opened.isSuspect('first', 0)).toBe(false);
    expect(opened.isSuspect('o0', 0)).toBe(true);

    const counting = new EvaluationBreaker({ threshold: 2 });
    counting.recordFailure('first', 's', 0);
    counting.recordFailure('second', 's', 0);
    for (let i = 0; i < 9_999; i++) counting.recordFailure(`o${i}`, 's', 0);
    // 'first' was forgotten; 'second' is still counted.
    expect(counting.recordFailure('second', 's', 0)).toBe(60 * SECOND);
    expect(counting.recordFailure('first', 's', 0)).toBeUndefined();
  });

  it('a failure refreshes a key, so a recently failing one is not the one forgotten', () => {
    const breaker = new EvaluationBreaker({ threshold: 3 });
    breaker.recordFailure('kept', 's', 0);
    breaker.recordFailure('dropped', 's', 0);
    breaker.recordFailure('kept', 's', 1);
    for (let i = 0; i < 9_999; i++) breaker.recordFailure(`o${i}`, 's', 0);
    expect(breaker.recordFailure('kept', 's', 2)).toBe(60 * SECOND + 2);
    expect(breaker.isSuspect('kept', 2)).toBe(true);
  });
});

import { describe, expect, it } from 'vitest';
import { foldSubscriptionHealth } from '../../src/storage/subscription-health.ts';
import type { AttemptCompletion } from '../../src/storage/types.ts';

/** What a batch of completions does to each subscription's health columns (both engines apply it). */
const done = (subscription_id: string, status: AttemptCompletion['status']) => ({ subscription_id, status }) as AttemptCompletion;
const fold = (...completions: AttemptCompletion[]) => Object.fromEntries(foldSubscriptionHealth(completions));

describe('foldSubscriptionHealth', () => {
  it('continues the failure clock on a failure or a retry, resets it on a success, restarts it on a failure after a success', () => {
    expect(fold(done('a', 'failed'))).toEqual({ a: { status: 'failed', success: 0, failing: 'continue' } });
    expect(fold(done('a', 'pending'))).toEqual({ a: { status: 'pending', success: 0, failing: 'continue' } });
    expect(fold(done('a', 'pending'), done('a', 'failed'))).toEqual({ a: { status: 'failed', success: 0, failing: 'continue' } });
    expect(fold(done('a', 'failed'), done('a', 'delivered'))).toEqual({ a: { status: 'delivered', success: 1, failing: 'reset' } });
    expect(fold(done('a', 'delivered'), done('a', 'pending'))).toEqual({ a: { status: 'pending', success: 1, failing: 'restart' } });
    expect(fold(done('a', 'delivered'), done('a', 'failed'), done('a', 'pending'))).toEqual({ a: { status: 'pending', success: 1, failing: 'restart' } });
  });

  it('leaves the clock alone for an outcome that is neither (a cancelled delivery), and keeps subscriptions apart', () => {
    expect(fold(done('a', 'cancelled'), done('b', 'delivered'), done('c', 'failed'))).toEqual({
      a: { status: 'cancelled', success: 0, failing: 'keep' },
      b: { status: 'delivered', success: 1, failing: 'reset' },
      c: { status: 'failed', success: 0, failing: 'continue' },
    });
  });
});

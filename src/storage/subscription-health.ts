import type { AttemptCompletion } from './types.ts';

type FailureClock = 'keep' | 'reset' | 'restart' | 'continue';

/**
 * What a batch of completions does to each subscription's health columns, in order: the last
 * status, whether anything succeeded, and how the failure clock (`failing_since`) moves —
 * reset by a success, restarted by a failure after a success, else continued.
 */
export function foldSubscriptionHealth(completions: AttemptCompletion[]): Map<string, { status: string; success: 0 | 1; failing: FailureClock }> {
  const out = new Map<string, { status: string; success: 0 | 1; failing: FailureClock }>();
  for (const c of completions) {
    const h = out.get(c.subscription_id) ?? { status: c.status, success: 0 as 0 | 1, failing: 'keep' as FailureClock };
    h.status = c.status;
    if (c.status === 'delivered') {
      h.success = 1;
      h.failing = 'reset';
    } else if (c.status === 'failed' || c.status === 'pending') {
      h.failing = h.failing === 'reset' || h.failing === 'restart' ? 'restart' : 'continue';
    }
    out.set(c.subscription_id, h);
  }
  return out;
}


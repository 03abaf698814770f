/**
 * Evaluation limits for tests that check what an expression gives, not how fast it runs. The
 * default 100 ms wall-clock limit is for production; on a loaded 2-core machine running two test
 * files and their gateways, one cold evaluation can pass it (CI failed once on a PagerDuty key).
 * Tests of the time limit itself pass their own small timeoutMs.
 */
export const ROOMY_LIMITS = { timeoutMs: 10_000 } as const;

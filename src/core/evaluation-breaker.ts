/**
 * The circuit breaker for templates and filters that keep running into their limits. An
 * evaluation that times out or runs out of memory costs a worker thread for the whole time
 * limit (and a restart); a template that does it on every event would spend the pool on
 * itself. After `threshold` such failures within `windowMs`, evaluations under the same key
 * fail at once for `cooldownMs`; then one is let through again.
 *
 * Keys are an owner (a subscription, "preview") and a source: a changed template starts afresh.
 * An owner with a recent failure is "suspect": the pool then runs at most one of its
 * evaluations at a time, and only while another thread is ready for everyone else.
 * Pure bookkeeping: the caller passes the clock.
 */
export interface BreakerOptions {
  threshold: number;
  windowMs: number;
  cooldownMs: number;
}

export const DEFAULT_BREAKER_OPTIONS: Readonly<BreakerOptions> = Object.freeze({ threshold: 3, windowMs: 60_000, cooldownMs: 60_000 });

/** Bound on remembered keys: templates are few, but previews can be many. */
const MAX_KEYS = 10_000;

export class EvaluationBreaker {
  readonly #opts: BreakerOptions;
  readonly #failures = new Map<string, number[]>();
  readonly #openUntil = new Map<string, number>();
  readonly #suspectUntil = new Map<string, number>();

  constructor(options: Partial<BreakerOptions> = {}) {
    this.#opts = { ...DEFAULT_BREAKER_OPTIONS, ...options };
  }

  /** Records a limit failure; returns the time the breaker stays open until, if this opened it. */
  recordFailure(owner: string, source: string, now: number): number | undefined {
    this.#suspectUntil.delete(owner);
    this.#suspectUntil.set(owner, now + this.#opts.windowMs);
    if (this.#suspectUntil.size > MAX_KEYS) this.#suspectUntil.delete(this.#suspectUntil.keys().next().value!);
    const key = keyOf(owner, source);
    const recent = this.#recent(key, now);
    recent.push(now);
    this.#failures.delete(key);
    this.#failures.set(key, recent);
    if (this.#failures.size > MAX_KEYS) this.#failures.delete(this.#failures.keys().next().value!);
    if (recent.length < this.#opts.threshold) return undefined;
    const until = now + this.#opts.cooldownMs;
    this.#openUntil.set(key, until);
    if (this.#openUntil.size > MAX_KEYS) this.#openUntil.delete(this.#openUntil.keys().next().value!);
    this.#failures.delete(key);
    return until;
  }

  /** A success ends this source's run of failures (the owner stays suspect until its window passes). */
  recordSuccess(owner: string, source: string): void {
    if (this.#failures.size) this.#failures.delete(keyOf(owner, source));
  }

  /** When the breaker for this owner's source is open, the time it closes; otherwise undefined. */
  openUntil(owner: string, source: string, now: number): number | undefined {
    if (this.#openUntil.size === 0) return undefined;
    const key = keyOf(owner, source);
    const until = this.#openUntil.get(key);
    if (until === undefined) return undefined;
    if (until > now) return until;
    this.#openUntil.delete(key);
    // Half-open: the next failure counts as a fresh run, and opens it again at the threshold.
    this.#failures.set(key, Array.from({ length: this.#opts.threshold - 1 }, () => now));
    return undefined;
  }

  /** Hit a limit within the window: the pool runs one evaluation of this owner at a time. */
  isSuspect(owner: string, now: number): boolean {
    if (this.#suspectUntil.size === 0) return false;
    const until = this.#suspectUntil.get(owner);
    if (until === undefined) return false;
    if (until > now) return true;
    this.#suspectUntil.delete(owner);
    return false;
  }

  #recent(key: string, now: number): number[] {
    const times = this.#failures.get(key);
    if (!times) return [];
    const recent = times.filter((t) => now - t < this.#opts.windowMs);
    if (recent.length === 0) this.#failures.delete(key);
    return recent;
  }
}

function keyOf(owner: string, source: string): string {
  return `${owner}\u0000${source}`;
}

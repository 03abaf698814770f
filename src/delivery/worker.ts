import { nextAttemptDelay } from '../core/backoff.ts';
import { describeSpan } from '../core/duration.ts';
import type { AttemptCompletion, AttemptRecord, ClaimedDelivery, CompletionResult, DeliveryStatus, Storage } from '../storage/types.ts';
import type { RuntimeSubscription } from '../services/subscriptions.ts';
import type { ConnectorDefinition } from './connector.ts';
import { destinationOf, dispatchAttempt, type DispatchDeps, type DispatchResult } from './dispatch.ts';
import type { Logger } from '../logger.ts';
import { WorkerCapacity } from './worker-capacity.ts';
import { Pacer } from './pacer.ts';
// An earlier version stored any positive rate; a value below today's floor is paced at the floor.
import { RATE_LIMIT_RANGE } from '../services/subscription-input.ts';

export interface WorkerOptions {
  concurrency: number;
  perDestinationConcurrency: number;
  leaseMs: number;
  /** Failing without a success this long disables a subscription. */
  disableAfterMs: number;
  shutdownGraceMs: number;
  /** Longest wait between polls of the queue when nothing is due sooner. */
  maxIdleMs?: number;
  /**
   * The database is this process's alone (SQLite): every lease found at start was left by a dead
   * process and is taken back at once. Shared (PostgreSQL): only expired leases are, since the
   * others belong to live neighbours.
   */
  exclusiveStorage?: boolean;
}

/** Things that happen to a delivery that the rest of the gateway hears about. */
export interface WorkerHooks {
  onDeliveryFailed?(info: { claimed: ClaimedDelivery; sub: RuntimeSubscription; attempt: AttemptRecord }): void;
  onSubscriptionDisabled?(info: { sub: RuntimeSubscription; reason: string; deleted: boolean; attempt: AttemptRecord }): void;
  onAttempt?(attempt: AttemptRecord): void;
}

export interface WorkerDeps {
  storage: Storage;
  dispatch: DispatchDeps;
  subscription: (id: string) => Promise<RuntimeSubscription | undefined>;
  connector: (name: string) => ConnectorDefinition | undefined;
  /** Subscriptions changed underneath the subscription cache (disabled, deleted). */
  invalidateSubscriptions: () => void;
  logger: Logger;
  hooks?: WorkerHooks;
  now?: () => number;
  random?: () => number;
  /** The slot counts (shared with ingest's thread when the worker runs in the delivery thread). */
  capacity?: WorkerCapacity;
}

/** What storage did with one completion: recorded (lease still held), and whether it disabled the subscription. */
interface Written {
  applied: boolean;
  disabled: boolean;
}

const PACING_HOLD_LIMIT_MS = 2_000;
/** Claims that may end with the process gone (crash, kill -9, lost lease) before a delivery is failed instead. */
const MAX_UNFINISHED_CLAIMS = 3;
const FRUITLESS_SKIP_PAUSE_MS = 50;

/**
 * The delivery worker: claims due deliveries under a lease, dispatches them with bounded
 * global and per-destination concurrency, records every attempt and schedules the next.
 * It never touches SQL: storage does claims and completions, in batches.
 */
export class DeliveryWorker {
  readonly #deps: WorkerDeps;
  readonly #opts: Required<WorkerOptions>;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #pacer = new Pacer();
  readonly #perOrigin = new Map<string, number>();
  /** Attempts queued for a busy destination; resolved with false when the worker stops. */
  readonly #waiting = new Map<string, ((acquired: boolean) => void)[]>();
  /** The subscriptions seen sending to each busy destination: a saturated one's are not claimed. */
  readonly #originSubscriptions = new Map<string, Set<string>>();
  readonly #subscriptionOrigin = new Map<string, string>();
  /** Global slots (SLUICE_DELIVERY_CONCURRENCY) held by attempts going on the wire. */
  #globalHeld = 0;
  readonly #globalWaiting: ((acquired: boolean) => void)[] = [];
  readonly #inFlight = new Set<Promise<void>>();
  #pendingCompletions: { completion: AttemptCompletion; after: (written: Written) => void }[] = [];
  #completionFlush: Promise<void> | null = null;
  #running = false;
  #stopping = false;
  #sending = 0;
  /**
   * Active, waiting-for-destination and reserved slot counts (deliveries committed already
   * leased, see reserve); shared with the HTTP thread when the worker runs in a delivery thread.
   */
  readonly #capacity: WorkerCapacity;
  #timer: NodeJS.Timeout | null = null;
  #polling = false;
  #pollAgain = false;
  #notified: string[] = [];
  /** Deliveries this worker holds (claimed, not yet completed or released): their leases are renewed. */
  readonly #held = new Set<string>();
  #lastLeaseSweep = 0;
  /** When a claim passing over saturated destinations last found nothing else due. */
  #fruitlessSkipAt = 0;
  #notifyScheduled = false;
  /** Slots taken by claims under way (their deliveries are not counted active until the claim returns). */
  #claiming = 0;

  constructor(deps: WorkerDeps, options: WorkerOptions) {
    this.#deps = deps;
    // Polls also renew leases: at least three per lease period.
    // Defaults for options left out or given as undefined.
    this.#opts = { ...options, maxIdleMs: options.maxIdleMs ?? Math.min(1_000, options.leaseMs / 3), exclusiveStorage: options.exclusiveStorage ?? true };
    this.#now = deps.now ?? Date.now;
    this.#random = deps.random ?? Math.random;
    this.#capacity = deps.capacity ?? new WorkerCapacity(options.concurrency);
  }

  get activeCount(): number {
    return this.#capacity.active;
  }

  /** Attempts on the wire right now (the in-flight gauge). */
  get sendingCount(): number {
    return this.#sending;
  }

  async start(): Promise<void> {
    // Leases left by a crashed process are reclaimed before anything else runs (on a shared
    // database, those that expired: a live instance's leases are not ours to take).
    const reclaimed = await this.#deps.storage.reclaimExpiredLeases(this.#now() + (this.#opts.exclusiveStorage ? this.#opts.leaseMs * 2 : 0));
    if (reclaimed) this.#deps.logger.info({ reclaimed }, 'reclaimed deliveries leased by a stopped process');
    this.#running = true;
    this.#capacity.running = true;
    this.poke();
  }

  /** New deliveries committed: claim them now rather than at the next poll. */
  notify(deliveryIds: string[]): void {
    if (!this.#running) return;
    this.#notified.push(...deliveryIds);
    if (this.#notifyScheduled) return;
    this.#notifyScheduled = true;
    setImmediate(() => {
      this.#notifyScheduled = false;
      const ids = this.#notified.splice(0);
      const room = this.#room();
      if (room <= 0) return; // the poller picks them up as capacity frees
      const wanted = ids.slice(0, room);
      void this.#claimAndRun(wanted.length, () => this.#deps.storage.claimByIds(wanted, this.#now(), this.#now() + this.#opts.leaseMs));
      if (ids.length > room) this.poke();
    });
  }

  /**
   * Reserves worker slots for deliveries about to be committed already leased (ingest's
   * preclaim): they skip the claim transaction and start the moment their commit returns.
   */
  reserve(wanted: number): { count: number; leaseUntil: number } {
    const count = this.#capacity.reserve(wanted);
    return { count, leaseUntil: count ? this.#now() + this.#opts.leaseMs : 0 };
  }

  release(count: number): void {
    this.#capacity.release(count);
  }

  /** Runs deliveries committed already leased to this worker (their slots were reserved). */
  startPreclaimed(claimed: ClaimedDelivery[]): void {
    this.release(claimed.length);
    // Stopped between the reservation and the commit: their leases expire and the next start sends them.
    if (!this.#running) return;
    for (const item of claimed) this.#track(this.#process(item));
  }

  /** Schedule a poll of the queue as soon as possible. */
  poke(): void {
    if (!this.#running) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#poll(), 0);
  }

  async #poll(): Promise<void> {
    this.#timer = null;
    if (!this.#running) return;
    if (this.#polling) {
      this.#pollAgain = true;
      return;
    }
    this.#polling = true;
    try {
      await this.#sweepLeases();
      do {
        this.#pollAgain = false;
        const room = this.#room();
        if (room <= 0) break;
        const now = this.#now();
        const skip = this.saturatedSubscriptions();
        // Everything due was a saturated destination's a moment ago: no new scan for each of its completions.
        if (skip && now - this.#fruitlessSkipAt < FRUITLESS_SKIP_PAUSE_MS) break;
        const batch = Math.min(room, 500);
        const claimed = await this.#claimAndRun(batch, () => this.#deps.storage.claimDue(now, batch, now + this.#opts.leaseMs, skip));
        this.#fruitlessSkipAt = skip && claimed === 0 ? now : 0;
        if (claimed === batch) this.#pollAgain = true;
      } while (this.#pollAgain && this.#running);
    } catch (err) {
      this.#deps.logger.error({ err }, 'delivery poll failed');
    } finally {
      this.#polling = false;
      this.#scheduleNextPoll();
    }
  }

  /** How many more deliveries to claim (see WorkerCapacity.room), less what claims under way take. */
  #room(): number {
    return this.#capacity.room() - this.#claiming;
  }

  /** Its destination has a full queue: the subscription's new deliveries stay pending (ingest asks). */
  isSaturated(subscriptionId: string): boolean {
    const origin = this.#subscriptionOrigin.get(subscriptionId);
    return origin !== undefined && (this.#waiting.get(origin)?.length ?? 0) >= this.#opts.perDestinationConcurrency;
  }

  /**
   * Subscriptions of destinations with SLUICE_DESTINATION_CONCURRENCY attempts already queued
   * behind the ones on the wire: claims pass their deliveries over and leave them pending.
   */
  saturatedSubscriptions(): Set<string> | undefined {
    let skip: Set<string> | undefined;
    for (const [origin, queue] of this.#waiting) {
      if (queue.length < this.#opts.perDestinationConcurrency) continue;
      for (const id of this.#originSubscriptions.get(origin) ?? []) (skip ??= new Set()).add(id);
    }
    return skip;
  }

  /**
   * While running, a few times per lease period: renew the leases of what this worker holds
   * (an attempt may take longer than a lease), then return expired leases to the queue — a
   * delivery whose completion could not be written is retried within a lease period, not at
   * the next restart.
   */
  async #sweepLeases(): Promise<void> {
    const now = this.#now();
    if (now - this.#lastLeaseSweep < this.#opts.leaseMs / 3) return;
    this.#lastLeaseSweep = now;
    if (this.#held.size) await this.#deps.storage.renewLeases([...this.#held], now + this.#opts.leaseMs);
    const reclaimed = await this.#deps.storage.reclaimExpiredLeases(now);
    if (reclaimed) this.#deps.logger.warn({ reclaimed }, 'reclaimed deliveries whose lease expired; they will be attempted again');
    // Every finish wakes the next delivery of its key; this catches one whose wake was missed.
    const woken = await this.#deps.storage.wakeFreeKeys(now);
    if (woken.length) {
      this.#deps.logger.info({ woken: woken.length }, 'woke ordered deliveries whose key was free');
      this.notify(woken);
    }
  }

  async #scheduleNextPoll(): Promise<void> {
    if (!this.#running || this.#timer) return;
    let delay = this.#opts.maxIdleMs;
    if (this.#room() > 0) {
      const due = await this.#deps.storage.nextDueAt().catch(() => null);
      if (due !== null) delay = Math.max(0, Math.min(delay, due - this.#now()));
      // What is due may all be for saturated destinations: then not again at once.
      if (this.#fruitlessSkipAt) delay = Math.max(delay, this.#fruitlessSkipAt + FRUITLESS_SKIP_PAUSE_MS - this.#now());
    }
    if (!this.#running || this.#timer) return;
    this.#timer = setTimeout(() => void this.#poll(), delay);
  }

  /**
   * Claims up to `count` deliveries and starts them. The room they take counts while the claim is
   * under way: a poll or a notify claiming meanwhile does not take it again.
   */
  async #claimAndRun(count: number, claim: () => Promise<ClaimedDelivery[]>): Promise<number> {
    this.#claiming += count;
    let claimed: ClaimedDelivery[];
    try {
      claimed = await claim();
    } catch (err) {
      this.#deps.logger.error({ err }, 'claiming deliveries failed');
      return 0;
    } finally {
      this.#claiming -= count;
    }
    for (const item of claimed) this.#track(this.#process(item));
    return claimed.length;
  }

  #track(work: Promise<void>): void {
    this.#capacity.adjustActive(1);
    const tracked = work
      .catch((err) => this.#deps.logger.error({ err }, 'delivery processing failed'))
      .finally(() => {
        this.#capacity.adjustActive(-1);
        this.#inFlight.delete(tracked);
        if (this.#running) this.poke();
      });
    this.#inFlight.add(tracked);
  }

  async #process(claimed: ClaimedDelivery): Promise<void> {
    await this.runClaimed(claimed);
  }

  /**
   * Dispatches a leased delivery and records the outcome. Exposed for test sends, which run
   * one delivery synchronously and return its attempt.
   */
  async runClaimed(claimed: ClaimedDelivery): Promise<AttemptRecord | 'released'> {
    this.#held.add(claimed.delivery.id);
    try {
      return await this.#run(claimed);
    } finally {
      this.#held.delete(claimed.delivery.id);
    }
  }

  async #run(claimed: ClaimedDelivery): Promise<AttemptRecord | 'released'> {
    const { delivery } = claimed;
    const found = await this.#sendable(claimed);
    if (!('sub' in found)) return found.outcome;
    let { sub, connector } = found;
    const crashes = (delivery.unfinished_claims ?? 1) - 1;
    if (crashes >= MAX_UNFINISHED_CLAIMS) {
      // The gateway died (or lost its lease) every time it held this delivery: something in it —
      // a template, an enormous payload — may be what kills it. Stop the loop; a replay retries.
      const attempt = this.#blankAttempt(claimed, `abandoned: the gateway stopped ${crashes} times while processing this delivery, before any attempt was recorded; replay it once the cause is fixed`);
      const written = await this.#complete({ attempt, delivery_id: delivery.id, status: 'failed', next_attempt_at: null, subscription_id: sub.record.id, disable_subscription_reason: null, delete_subscription: false }, claimed, sub);
      if (written.applied) this.#deps.hooks?.onDeliveryFailed?.({ claimed, sub, attempt });
      return attempt;
    }

    // rate_limit: wait for this subscription's slot; a long wait goes back to the queue instead.
    // A test send answers an operator waiting on the button, so it is not paced.
    const reservedAt = this.#now();
    const rateLimit = claimed.event.test || !sub.record.rate_limit ? null : Math.max(sub.record.rate_limit, RATE_LIMIT_RANGE.min);
    const wait = await this.#reserveSlot(sub.record.id, delivery.id, rateLimit, reservedAt);
    if (wait > PACING_HOLD_LIMIT_MS) {
      // Delayed, never dropped: back to the queue, due when its slot comes.
      this.#pacer.park(delivery.id, reservedAt + wait, reservedAt);
      await this.#deps.storage.releaseLeases([delivery.id], reservedAt, reservedAt + wait);
      return 'released';
    }
    if (wait > 0) await sleep(wait);
    let gap: number;
    while ((gap = this.#pacer.startGap(sub.record.id, rateLimit, this.#now())) > 0) await sleep(gap);

    const origin = originOf(destinationOf(sub, connector));
    this.#noteDestination(origin, sub.record.id);
    // The destination's slot first, then a global one: only an attempt about to go on the wire holds that.
    const acquiredOrigin = await this.#acquireOrigin(origin);
    if (!acquiredOrigin || !(await this.#acquireGlobal())) {
      if (acquiredOrigin) this.#releaseOrigin(origin);
      // Shutting down before it went on the wire: back to the queue for the next start.
      await this.#deps.storage.releaseLeases([delivery.id], this.#now());
      return 'released';
    }
    // The waits above take time: a delete or disable meanwhile must stop this attempt.
    const current = await this.#sendable(claimed);
    if (!('sub' in current)) {
      this.#releaseGlobal();
      this.#releaseOrigin(origin);
      return current.outcome;
    }
    ({ sub, connector } = current);
    let result: DispatchResult;
    this.#sending++;
    try {
      result = await dispatchAttempt(this.#deps.dispatch, claimed, sub, connector, this.#now());
    } finally {
      this.#sending--;
      this.#releaseGlobal();
      this.#releaseOrigin(origin);
    }
    const completion = this.#decide(claimed, sub, result);
    const written = await this.#complete(completion, claimed, sub);
    this.#mirrorHealth(sub, completion.status);
    // Operational events once: only the completion that was written (its lease still held) reports
    // a failure, and only the one that actually disabled the subscription reports that.
    if (completion.status === 'failed' && written.applied) this.#deps.hooks?.onDeliveryFailed?.({ claimed, sub, attempt: completion.attempt });
    if (completion.disable_subscription_reason) {
      this.#deps.invalidateSubscriptions();
      if (written.disabled) this.#deps.hooks?.onSubscriptionDisabled?.({ sub, reason: completion.disable_subscription_reason, deleted: completion.delete_subscription, attempt: completion.attempt });
    }
    return completion.attempt;
  }

  /**
   * How long to wait for the subscription's next start slot. On a database shared by several
   * instances the slots are kept there, so the rate holds in total rather than per instance
   * (only rate-limited subscriptions pay for that round trip); otherwise they are kept here.
   */
  async #reserveSlot(subscriptionId: string, deliveryId: string, perSecond: number | null, now: number): Promise<number> {
    const shared = this.#deps.storage.reserveRateSlot?.bind(this.#deps.storage);
    if (!perSecond || !shared || this.#pacer.isParked(deliveryId)) return this.#pacer.reserve(subscriptionId, deliveryId, perSecond, now);
    return Math.max(0, (await shared(subscriptionId, now, 1000 / perSecond)) - now);
  }

  /**
   * The delivery's subscription and connector if it may be sent now. Otherwise it is settled:
   * a disabled subscription's delivery goes back to wait (storage pauses it until the
   * subscription is enabled again); a deleted one's is cancelled, as is one whose connector
   * no longer exists.
   */
  async #sendable(claimed: ClaimedDelivery): Promise<{ sub: RuntimeSubscription; connector: ConnectorDefinition } | { outcome: AttemptRecord | 'released' }> {
    const { delivery } = claimed;
    const sub = await this.#deps.subscription(delivery.subscription_id);
    const connector = sub ? this.#deps.connector(sub.record.connector) : undefined;
    if (sub && connector && sub.record.enabled) return { sub, connector };
    // A test send answers the operator now; it is not kept for later.
    if (sub && connector && !claimed.event.test) {
      await this.#deps.storage.releaseLeases([delivery.id], this.#now());
      return { outcome: 'released' };
    }
    const reason = !sub ? 'subscription deleted' : !connector ? `unknown connector ${sub.record.connector}` : `subscription disabled${sub.record.disabled_reason ? `: ${sub.record.disabled_reason}` : ''}`;
    const attempt = this.#blankAttempt(claimed, reason);
    await this.#complete({ attempt, delivery_id: delivery.id, status: sub ? 'failed' : 'cancelled', next_attempt_at: null, subscription_id: delivery.subscription_id, disable_subscription_reason: null, delete_subscription: false }, claimed, sub);
    return { outcome: attempt };
  }

  #decide(claimed: ClaimedDelivery, sub: RuntimeSubscription, result: DispatchResult): AttemptCompletion {
    const { delivery } = claimed;
    const { attempt, verdict } = result;
    const now = this.#now();
    let status: DeliveryStatus;
    let nextAt: number | null = null;
    let disable: string | null = null;
    let remove = false;
    switch (verdict.outcome) {
      case 'success':
        status = 'delivered';
        attempt.outcome = 'success';
        break;
      case 'retry': {
        const delay = nextAttemptDelay({
          schedule: sub.schedule,
          attemptsMade: delivery.attempts + 1,
          random: this.#random,
          retryAfterMs: result.retryAfterMs,
        });
        if (claimed.event.test) {
          // A test send reports its one attempt; it is not retried behind the operator's back.
          status = 'failed';
          attempt.outcome = 'fail';
          attempt.error = `${attempt.error ?? verdict.reason} (test sends are not retried)`;
        } else if (delay === null) {
          status = 'failed';
          attempt.outcome = 'fail';
          attempt.error = `${attempt.error ?? verdict.reason} (gave up after ${delivery.attempts + 1} attempts)`;
        } else {
          status = 'pending';
          nextAt = now + delay;
          attempt.outcome = 'retry';
        }
        break;
      }
      case 'fail':
        status = 'failed';
        attempt.outcome = 'fail';
        break;
      case 'disable':
      case 'delete':
        status = 'failed';
        attempt.outcome = verdict.outcome === 'delete' ? 'gone' : 'disabled';
        disable = verdict.reason;
        remove = verdict.outcome === 'delete';
        break;
    }
    if (status !== 'delivered' && !disable && this.#opts.disableAfterMs > 0) {
      // The run without success began at its first failure, or at a later success (another
      // instance's, or one stamped in the same millisecond as the failure after it).
      const since = sub.record.failing_since;
      if (since !== null && now - Math.max(since, sub.record.last_success_at ?? 0) >= this.#opts.disableAfterMs) {
        disable = `no successful delivery for ${describeSpan(this.#opts.disableAfterMs)}`;
      }
    }
    return { attempt, delivery_id: delivery.id, status, next_attempt_at: nextAt, subscription_id: sub.record.id, disable_subscription_reason: disable, delete_subscription: remove };
  }

  /**
   * The subscription cache is only refreshed on writes through the subscription service, so the
   * health columns storage just updated (failing_since, last_success_at) are copied onto the
   * cached record too; otherwise the "no success for N days" rule would never see a failure run.
   */
  #mirrorHealth(sub: RuntimeSubscription, status: DeliveryStatus): void {
    const now = this.#now();
    const record = sub.record;
    record.last_delivery_at = now;
    record.last_delivery_status = status;
    if (status === 'delivered') {
      record.last_success_at = now;
      record.failing_since = null;
    } else if (status === 'failed' || status === 'pending') {
      record.failing_since ??= now;
    }
  }

  #blankAttempt(claimed: ClaimedDelivery, error: string): AttemptRecord {
    return {
      id: `att_${claimed.delivery.id.slice(4)}_${claimed.delivery.chain}_${claimed.delivery.attempts + 1}`,
      delivery_id: claimed.delivery.id,
      chain: claimed.delivery.chain,
      number: claimed.delivery.attempts + 1,
      started_at: this.#now(),
      outcome: 'fail',
      method: 'POST',
      url: '',
      request_headers: {},
      request_body: null,
      response_status: null,
      response_headers: null,
      response_body: null,
      latency_ms: 0,
      error,
      steps: null,
    };
  }

  /**
   * Completions are written in batches: every attempt finishing in the same tick shares a
   * transaction. An ordered delivery's finish lets the next of its key go (storage wakes it and
   * this worker claims it at once); a failure under `on_failure: block` stops the key instead.
   */
  #complete(completion: AttemptCompletion, claimed: ClaimedDelivery, sub: RuntimeSubscription | undefined): Promise<Written> {
    completion.ordering_key = claimed.delivery.ordering_key ?? null;
    completion.block_key = completion.status === 'failed' && !!completion.ordering_key && sub?.record.ordering?.on_failure === 'block';
    this.#deps.hooks?.onAttempt?.(completion.attempt);
    return new Promise((resolve) => {
      this.#pendingCompletions.push({ completion, after: resolve });
      if (!this.#completionFlush) this.#completionFlush = new Promise<void>((r) => setImmediate(r)).then(() => this.#flushCompletions());
    });
  }

  async #flushCompletions(): Promise<void> {
    while (this.#pendingCompletions.length) {
      const batch = this.#pendingCompletions.splice(0, 1000);
      let result: CompletionResult = { applied: [], disabledBy: [] };
      try {
        result = await this.#deps.storage.completeAttempts(batch.map((b) => b.completion), this.#now());
      } catch (err) {
        // The lease expires and the delivery is retried: at least once, never lost.
        this.#deps.logger.error({ err, count: batch.length }, 'recording attempts failed; deliveries will be retried after their lease');
      }
      const applied = new Set(result.applied);
      const disabledBy = new Set(result.disabledBy);
      // The next deliveries of keys that just finished: claimed now, not at the next poll.
      if (result.woken?.length) this.notify(result.woken);
      for (const b of batch) b.after({ applied: applied.has(b.completion.delivery_id), disabled: disabledBy.has(b.completion.delivery_id) });
    }
    this.#completionFlush = null;
  }

  /** Takes one of the destination's concurrency slots; false when the worker is stopping. */
  async #acquireOrigin(origin: string): Promise<boolean> {
    if (this.#stopping) return false;
    const count = this.#perOrigin.get(origin) ?? 0;
    if (count < this.#opts.perDestinationConcurrency) {
      this.#perOrigin.set(origin, count + 1);
      return true;
    }
    this.#capacity.adjustWaiting(1);
    return new Promise<boolean>((resolve) => {
      const queue = this.#waiting.get(origin) ?? [];
      queue.push((acquired) => {
        this.#capacity.adjustWaiting(-1);
        resolve(acquired);
      });
      this.#waiting.set(origin, queue);
    });
  }

  #releaseOrigin(origin: string): void {
    const next = this.#waiting.get(origin)?.shift();
    if (next) {
      next(true); // hand the slot over directly
      return;
    }
    this.#waiting.delete(origin);
    const count = (this.#perOrigin.get(origin) ?? 1) - 1;
    if (count > 0) {
      this.#perOrigin.set(origin, count);
    } else {
      this.#perOrigin.delete(origin);
      for (const id of this.#originSubscriptions.get(origin) ?? []) this.#subscriptionOrigin.delete(id);
      this.#originSubscriptions.delete(origin);
    }
  }

  #noteDestination(origin: string, subscriptionId: string): void {
    const subscriptions = this.#originSubscriptions.get(origin);
    if (subscriptions) subscriptions.add(subscriptionId);
    else this.#originSubscriptions.set(origin, new Set([subscriptionId]));
    this.#subscriptionOrigin.set(subscriptionId, origin);
  }

  /** Takes a global slot for an attempt about to go on the wire; false when the worker is stopping. */
  async #acquireGlobal(): Promise<boolean> {
    if (this.#stopping) return false;
    if (this.#globalHeld < this.#opts.concurrency) {
      this.#globalHeld++;
      return true;
    }
    return new Promise<boolean>((resolve) => this.#globalWaiting.push(resolve));
  }

  #releaseGlobal(): void {
    const next = this.#globalWaiting.shift();
    if (next) next(true); // hand the slot over directly
    else this.#globalHeld--;
  }

  /** Stop claiming, let in-flight attempts finish within the grace period, release the rest. */
  async stop(): Promise<void> {
    this.#running = false;
    this.#capacity.running = false;
    this.#stopping = true;
    // Attempts still waiting for a destination slot are not in flight: release them now.
    for (const queue of this.#waiting.values()) for (const resolve of queue.splice(0)) resolve(false);
    this.#waiting.clear();
    for (const resolve of this.#globalWaiting.splice(0)) resolve(false);
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const grace = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), this.#opts.shutdownGraceMs).unref());
    const outcome = await Promise.race([Promise.allSettled([...this.#inFlight]).then(() => 'done' as const), grace]);
    if (outcome === 'timeout') this.#deps.logger.warn({ active: this.#capacity.active }, 'shutdown grace period over; unfinished attempts will be retried after restart');
    await this.#completionFlush;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}

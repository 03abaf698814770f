/**
 * Per-subscription pacing for `rate_limit`: the earliest time the next attempt may start.
 * A delivery whose slot is too far off goes back to the queue ("parked") and keeps its slot:
 * reserving a fresh one when it returns would push every parked delivery behind all the
 * others, again and again, and a backlog longer than the hold limit would never be sent.
 */
export class Pacer {
  #next = new Map<string, number>();
  #parked = new Map<string, number>();
  #lastStart = new Map<string, number>();

  /** Reserves a start slot for the delivery (or returns its parked one); how long to wait for it. */
  reserve(subscriptionId: string, deliveryId: string, perSecond: number | null, now: number): number {
    const parked = this.#parked.get(deliveryId);
    if (parked !== undefined) {
      this.#parked.delete(deliveryId);
      if (perSecond) return Math.max(0, parked - now);
    }
    if (!perSecond) return 0;
    const slot = Math.max(now, this.#next.get(subscriptionId) ?? 0);
    this.#next.set(subscriptionId, slot + 1000 / perSecond);
    return slot - now;
  }

  /**
   * Called right before sending: how much longer to wait so starts stay at least 1/rate apart
   * even when timers fire late or several parked deliveries come back in the same poll; 0 means
   * go now (and records the start).
   */
  startGap(subscriptionId: string, perSecond: number | null, now: number): number {
    if (!perSecond) return 0;
    const earliest = (this.#lastStart.get(subscriptionId) ?? -Infinity) + 1000 / perSecond;
    if (earliest > now) return earliest - now;
    this.#lastStart.set(subscriptionId, now);
    return 0;
  }

  isParked(deliveryId: string): boolean {
    return this.#parked.has(deliveryId);
  }

  /** The delivery waits for its slot in the queue; its slot stays reserved. */
  park(deliveryId: string, slot: number, now: number): void {
    this.#parked.set(deliveryId, slot);
    // Deliveries cancelled while parked never come back; forget their long-past slots.
    if (this.#parked.size > 10_000) for (const [id, at] of this.#parked) if (at < now - 60_000) this.#parked.delete(id);
  }
}

/**
 * Group commit: callers that arrive within the same event-loop turn share one flush (one
 * database transaction, one fsync), and so do all those that arrive while a flush is under way
 * (one flush at a time: with storage off the event loop, a commit takes several turns). Each
 * caller still gets only its own results, and only after the shared transaction committed.
 */
interface Waiter<I, R> {
  items: I[];
  resolve: (r: R[]) => void;
  reject: (e: unknown) => void;
}

export class GroupCommit<I, R> {
  #queue: Waiter<I, R>[] = [];
  #scheduled = false;
  #flushing = false;

  constructor(
    private readonly flush: (items: I[]) => Promise<R[]>,
    private readonly maxItems = 5_000,
  ) {}

  submit(items: I[]): Promise<R[]> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ items, resolve, reject });
      if (!this.#flushing) this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => void this.#run());
  }

  async #run(): Promise<void> {
    this.#scheduled = false;
    this.#flushing = true;
    try {
      await this.#drain();
    } finally {
      this.#flushing = false;
      // Callers answered by the last flush may have submitted again before this point.
      if (this.#queue.length) this.#schedule();
    }
  }

  async #drain(): Promise<void> {
    while (this.#queue.length) {
      const group: Waiter<I, R>[] = [];
      let count = 0;
      while (this.#queue.length && (count === 0 || count + this.#queue[0].items.length <= this.maxItems)) {
        const next = this.#queue.shift()!;
        group.push(next);
        count += next.items.length;
      }
      try {
        const results = await this.flush(group.flatMap((g) => g.items));
        let offset = 0;
        for (const g of group) {
          g.resolve(results.slice(offset, offset + g.items.length));
          offset += g.items.length;
        }
      } catch (err) {
        // The whole group rolled back. Retry each caller alone, so one bad request cannot fail
        // its neighbours; a caller whose own flush fails is told so, and nobody gets a false 202.
        if (group.length === 1) group[0].reject(err);
        else for (const g of group) await this.flush(g.items).then(g.resolve, g.reject);
      }
    }
  }
}

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GroupCommit } from '../../src/services/group-commit.ts';
import { fixture, startGateway, type TestGateway } from '../support/gateway.ts';

/**
 * Group commit: callers arriving in the same event-loop turn share one flush (one transaction,
 * one fsync); each gets its own results, only after the commit; one bad caller cannot fail its
 * neighbours. First on the class, then through the gateway's real IngestService and SQLite.
 */

/** A flush that records each call; items named in `bad` make the whole call fail. */
function recordingFlush(bad: Set<string> = new Set()) {
  const calls: string[][] = [];
  const flush = async (items: string[]) => {
    calls.push([...items]);
    if (items.some((i) => bad.has(i))) throw new Error(`bad item in ${items.join(',')}`);
    return items.map((i) => `ok:${i}`);
  };
  return { calls, flush };
}

describe('GroupCommit', () => {
  it('callers in the same turn share one flush, and each gets exactly its own results', async () => {
    const { calls, flush } = recordingFlush();
    const commit = new GroupCommit(flush);
    const results = await Promise.all([commit.submit(['a1', 'a2']), commit.submit(['b1']), commit.submit(['c1', 'c2', 'c3'])]);
    expect(calls).toEqual([['a1', 'a2', 'b1', 'c1', 'c2', 'c3']]);
    expect(results).toEqual([['ok:a1', 'ok:a2'], ['ok:b1'], ['ok:c1', 'ok:c2', 'ok:c3']]);
  });

  it('nobody is answered before the shared flush finished', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const calls: string[][] = [];
    const commit = new GroupCommit(async (items: string[]) => {
      calls.push(items);
      await gate;
      return items;
    });
    let settled = 0;
    const pending = [commit.submit(['a']), commit.submit(['b'])].map((p) => p.then((r) => ((settled += 1), r)));
    // A positive signal that the flush is under way, not a sleep: it has been called.
    await new Promise<void>((resolve) => {
      const poll = () => (calls.length ? resolve() : setImmediate(poll));
      poll();
    });
    expect(settled).toBe(0);
    release();
    expect(await Promise.all(pending)).toEqual([['a'], ['b']]);
  });

  it('a later turn gets a flush of its own', async () => {
    const { calls, flush } = recordingFlush();
    const commit = new GroupCommit(flush);
    await commit.submit(['first']);
    await commit.submit(['second']);
    expect(calls).toEqual([['first'], ['second']]);
  });

  it('one flush at a time: callers arriving while one is under way (several turns) share the next', async () => {
    const gates: (() => void)[] = [];
    const calls: string[][] = [];
    const commit = new GroupCommit(async (items: string[]) => {
      calls.push(items);
      await new Promise<void>((resolve) => gates.push(resolve));
      return items;
    });
    const untilCalls = (n: number) => new Promise<void>((resolve) => {
      const poll = () => (calls.length >= n ? resolve() : setImmediate(poll));
      poll();
    });
    const first = commit.submit(['a']);
    await untilCalls(1);
    // Three more callers, each in a turn of its own, while the first flush has not finished.
    const later: Promise<string[]>[] = [];
    for (const item of ['b', 'c', 'd']) {
      later.push(commit.submit([item]));
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(calls).toEqual([['a']]);
    gates.shift()!();
    expect(await first).toEqual(['a']);
    await untilCalls(2);
    expect(calls).toEqual([['a'], ['b', 'c', 'd']]);
    gates.shift()!();
    expect(await Promise.all(later)).toEqual([['b'], ['c'], ['d']]);
  });

  it('callers of one turn schedule one run: a caller of a later turn still waits for the flush under way', async () => {
    const gates: (() => void)[] = [];
    const calls: string[][] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const commit = new GroupCommit(async (items: string[]) => {
      calls.push(items);
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise<void>((resolve) => gates.push(resolve));
      inFlight -= 1;
      return items;
    });
    const untilCalls = (n: number) => new Promise<void>((resolve) => {
      const poll = () => (calls.length >= n ? resolve() : setImmediate(poll));
      poll();
    });
    // Three callers in one turn: one flush, and no spare run left behind to end the flush early.
    const first = Promise.all([commit.submit(['a']), commit.submit(['b']), commit.submit(['c'])]);
    await untilCalls(1);
    await new Promise((resolve) => setImmediate(resolve));
    const later = commit.submit(['d']);
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toEqual([['a', 'b', 'c']]);
    gates.shift()!();
    expect(await first).toEqual([['a'], ['b'], ['c']]);
    await untilCalls(2);
    gates.shift()!();
    expect(await later).toEqual(['d']);
    expect(calls).toEqual([['a', 'b', 'c'], ['d']]);
    expect(maxInFlight).toBe(1);
  });

  it('one bad caller does not fail its neighbours: the group is retried caller by caller', async () => {
    const { calls, flush } = recordingFlush(new Set(['bad']));
    const commit = new GroupCommit(flush);
    const outcomes = await Promise.allSettled([commit.submit(['a']), commit.submit(['bad', 'x']), commit.submit(['c'])]);
    expect(outcomes[0]).toEqual({ status: 'fulfilled', value: ['ok:a'] });
    expect(outcomes[1].status).toBe('rejected');
    expect((outcomes[1] as PromiseRejectedResult).reason.message).toBe('bad item in bad,x');
    expect(outcomes[2]).toEqual({ status: 'fulfilled', value: ['ok:c'] });
    expect(calls).toEqual([['a', 'bad', 'x', 'c'], ['a'], ['bad', 'x'], ['c']]);
  });

  it('a lone caller whose flush fails is told so, without a second try', async () => {
    const { calls, flush } = recordingFlush(new Set(['bad']));
    const commit = new GroupCommit(flush);
    await expect(commit.submit(['bad'])).rejects.toThrow('bad item in bad');
    expect(calls).toEqual([['bad']]);
  });

  it('splits a turn into groups of at most maxItems items, never splitting a caller', async () => {
    const { calls, flush } = recordingFlush();
    const commit = new GroupCommit(flush, 3);
    const results = await Promise.all([commit.submit(['a1', 'a2']), commit.submit(['b1']), commit.submit(['c1', 'c2']), commit.submit(['d1', 'd2', 'd3', 'd4'])]);
    expect(calls).toEqual([['a1', 'a2', 'b1'], ['c1', 'c2'], ['d1', 'd2', 'd3', 'd4']]);
    expect(results).toEqual([['ok:a1', 'ok:a2'], ['ok:b1'], ['ok:c1', 'ok:c2'], ['ok:d1', 'ok:d2', 'ok:d3', 'ok:d4']]);
  });

  it('a group of exactly maxItems items is one flush', async () => {
    const { calls, flush } = recordingFlush();
    const commit = new GroupCommit(flush, 3);
    await Promise.all([commit.submit(['a']), commit.submit(['b']), commit.submit(['c'])]);
    expect(calls).toEqual([['a', 'b', 'c']]);
  });
});

describe('group commit in the gateway (IngestService over SQLite)', { timeout: 30_000 }, () => {
  let gw: TestGateway;
  let transactions: number;
  let seq = 0;
  const event = (label: string) => ({ ...fixture('call.ended'), id: `evt_gc_${process.pid}_${label}_${++seq}` });

  beforeAll(async () => {
    gw = await startGateway();
    // Count the storage's ingest transactions: the flush the gateway's GroupCommit calls.
    const storage = gw.sluice.storage;
    const ingest = storage.ingest.bind(storage);
    transactions = 0;
    storage.ingest = async (items) => {
      transactions += 1;
      return ingest(items);
    };
  });
  afterAll(() => gw?.stop());

  it('ten requests in one turn are committed in one transaction, each answered with its own event', async () => {
    const events = Array.from({ length: 10 }, (_, i) => event(`batch${i}`));
    const before = transactions;
    const accepted = await Promise.all(events.map((e) => gw.sluice.ingest.accept([e])));
    expect(transactions - before).toBe(1);
    expect(accepted.map((a) => a[0].id)).toEqual(events.map((e) => e.id));
    for (const e of events) expect(await gw.sluice.storage.getEvent(e.id)).toMatchObject({ id: e.id });
  });

  it('one request with a conflicting event id fails alone; its neighbours in the same turn are stored', async () => {
    const taken = event('taken');
    await gw.sluice.ingest.accept([taken]);
    const conflicting = { ...taken, data: { ...taken.data, changed: true } };
    const good = [event('good1'), event('good2')];
    const outcomes = await Promise.allSettled([gw.sluice.ingest.accept([good[0]]), gw.sluice.ingest.accept([conflicting]), gw.sluice.ingest.accept([good[1]])]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'event_id_conflict' });
    for (const e of good) expect(await gw.sluice.storage.getEvent(e.id)).toMatchObject({ id: e.id });
    expect(((await gw.sluice.storage.getEvent(taken.id))!.data as { changed?: boolean }).changed).toBeUndefined();
  });

  it('over HTTP, a conflicting request is a 409 and concurrent good requests are 202s', async () => {
    const taken = event('http_taken');
    expect((await gw.api('POST', '/api/v1/events', taken)).status).toBe(202);
    const bodies = [event('h1'), { ...taken, data: { ...taken.data, changed: true } }, event('h2'), event('h3')];
    const answers = await Promise.all(bodies.map((b) => gw.api('POST', '/api/v1/events', b)));
    expect(answers.map((a) => a.status)).toEqual([202, 409, 202, 202]);
  });
});

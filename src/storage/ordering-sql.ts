/**
 * The SQL of ordered delivery, shared by both engines (they differ only in how a true boolean is
 * written, and in one check only PostgreSQL needs). Every statement that asks "what holds this
 * key" repeats the predicate of the partial index `deliveries_ordering` word for word, so both
 * planners read that index: it holds only unfinished ordered deliveries, and unordered ones never
 * pay for it.
 */

/** Statuses of a delivery that has not finished: it holds its key. */
export const UNFINISHED = "('pending','paused','waiting','delivering')";

export interface OrderingDialect {
  /** How a true boolean column is tested (`blocks_key = 1` in SQLite, `blocks_key` in PostgreSQL). */
  isTrue: string;
  /**
   * Instances accepting events of one key at the same moment may commit them out of sequence order
   * (PostgreSQL): then one in flight holds the key whatever its sequence.
   */
  concurrentIngest: boolean;
}

export const SQLITE_ORDERING: OrderingDialect = { isTrue: ' = 1', concurrentIngest: false };
export const POSTGRES_ORDERING: OrderingDialect = { isTrue: '', concurrentIngest: true };

/** The partial index's predicate, on `alias`: unfinished ordered, or failed and blocking its key. */
export function holdsKey(alias: string, dialect: OrderingDialect): string {
  return `(${alias}.status IN ${UNFINISHED} OR ${alias}.blocks_key${dialect.isTrue})`;
}

/**
 * Deliveries of `d`'s key ahead of it: accepted earlier and still holding the key (pending,
 * paused, waiting, in flight — even after its lease expired —, or failed and blocking it). The
 * index range on `sequence` finds the first at once, however long the key's queue.
 */
export function aheadOf(d: string, dialect: OrderingDialect, columns = 'o.id'): string {
  return `SELECT ${columns} FROM deliveries o WHERE o.subscription_id = ${d}.subscription_id AND o.ordering_key = ${d}.ordering_key
    AND ${holdsKey('o', dialect)} AND o.sequence < ${d}.sequence`;
}

/** Another delivery of `d`'s key in flight (index `deliveries_ordering_inflight`, PostgreSQL). */
export function inFlightBeside(d: string, columns = 'f.id'): string {
  return `SELECT ${columns} FROM deliveries f WHERE f.subscription_id = ${d}.subscription_id AND f.ordering_key = ${d}.ordering_key
    AND f.ordering_key IS NOT NULL AND f.status = 'delivering' AND f.id <> ${d}.id`;
}

/** `d` may start now as far as ordering goes (unordered deliveries pass at once). */
export function mayStart(d: string, dialect: OrderingDialect): string {
  const inFlight = dialect.concurrentIngest ? ` AND NOT EXISTS (${inFlightBeside(d)})` : '';
  return `(${d}.ordering_key IS NULL OR (NOT EXISTS (${aheadOf(d, dialect)})${inFlight}))`;
}

/**
 * The first delivery of a key that holds it (lowest sequence): the one a finish wakes when it is
 * waiting (or claims at once when it is pending).
 */
export function headOfKey(dialect: OrderingDialect, sub: string, key: string): string {
  return `SELECT h.id FROM deliveries h WHERE h.subscription_id = ${sub} AND h.ordering_key = ${key} AND ${holdsKey('h', dialect)}
    ORDER BY h.sequence LIMIT 1`;
}

/** A finished delivery of an ordered key (not the one blocking it): a replay goes to the end of the key's queue. */
export function isOldOrdered(status: string, orderingKey: string | null, blocksKey: boolean): boolean {
  return !!orderingKey && !blocksKey && (status === 'delivered' || status === 'failed' || status === 'cancelled');
}

/**
 * Loaded into the gateway's SQLite storage thread by tests (SluiceOptions.sqliteThreadPreload):
 * the storage lives there now, so what a test wants to watch or do to it runs there too. Adds
 * methods the tests reach through SqliteThreadStorage.call(name, args).
 */
import type Database from 'better-sqlite3';
import type { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.ts';

export interface Observation {
  method: string;
  /** entry: when the call starts; tx: inside one of its transactions; exit: when its synchronous part returned. */
  at: 'entry' | 'tx' | 'exit';
  synchronous: number;
}

export default function probe(storage: SqliteStorage): void {
  const db = storage.db;
  const seen: Observation[] = [];
  const mode = () => db.pragma('synchronous', { simple: true }) as number;
  const record = (method: string, at: Observation['at']) => {
    if (db.open) seen.push({ method, at, synchronous: mode() });
  };
  let current = 'outside a storage call';
  // Every method of the storage records the fsync setting when it starts and when it returns...
  const methods = Object.getOwnPropertyNames(Object.getPrototypeOf(storage)).filter((name) => name !== 'constructor' && typeof (storage as any)[name] === 'function');
  for (const name of methods) {
    const original = (storage as any)[name].bind(storage);
    (storage as any)[name] = (...args: unknown[]) => {
      const outer = current;
      current = name;
      record(name, 'entry');
      try {
        return original(...args);
      } finally {
        // Storage calls do their SQLite work synchronously: this is after their commits.
        record(name, 'exit');
        current = outer;
      }
    };
  }
  // ...and inside each of its transactions.
  const transaction = db.transaction.bind(db);
  (db as { transaction: Database.Database['transaction'] }).transaction = ((fn: (...args: any[]) => unknown) =>
    transaction((...args: any[]) => {
      record(current, 'tx');
      return fn(...args);
    })) as Database.Database['transaction'];

  Object.assign(storage, {
    probeMethods: () => methods,
    probeObservations: () => seen,
    probePragma: (name: string) => db.pragma(name, { simple: true }),
    /** The thread dies of an uncaught exception (as of a bug or a native failure) while this call is in flight. */
    probeCrash: () => {
      setImmediate(() => {
        throw new Error('storage thread crash (probe)');
      });
      return new Promise(() => undefined);
    },
  });
}

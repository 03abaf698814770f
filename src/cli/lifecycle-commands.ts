import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../config.ts';
import { SqliteStorage } from '../storage/sqlite/sqlite-storage.ts';
import { Pruner } from '../services/pruner.ts';
import { formatDuration } from '../core/duration.ts';
import { CliError, EXIT } from './exit-codes.ts';

const print = (line: string): void => void process.stdout.write(line + '\n');

/** The configured SQLite file, which must exist: these commands never create an empty database. */
function databaseFile(): string {
  const config = loadConfig();
  if (config.databaseUrl) throw new CliError(EXIT.usage, 'SLUICE_DATABASE_URL is set: back up PostgreSQL with pg_dump; prune runs in the gateway');
  const file = path.join(config.dataDir, 'sluice.db');
  if (!fs.existsSync(file)) throw new CliError(EXIT.usage, `no database at ${file}; set SLUICE_DATA_DIR to the gateway's data directory`);
  return file;
}

/**
 * `sluice prune` and `sluice backup`: they open the database directly, next to a running gateway
 * (SQLite allows one writer at a time; both work in short steps, so the gateway waits milliseconds).
 */
export function registerLifecycleCommands(program: Command): void {
  program
    .command('prune')
    .description('delete now what retention no longer keeps (SLUICE_RETENTION, SLUICE_DEAD_LETTER_RETENTION) and print what was removed; safe while the gateway runs')
    .option('--json', 'print the counts as JSON')
    .action(async (opts: { json?: boolean }) => {
      const config = loadConfig();
      const file = databaseFile();
      const storage = new SqliteStorage(file);
      try {
        await storage.migrate();
        const pruner = new Pruner({ storage, policy: { retentionMs: config.retentionMs, deadLetterRetentionMs: config.deadLetterRetentionMs } });
        const report = await pruner.runOnce();
        const size = await storage.databaseSize();
        if (opts.json) {
          print(JSON.stringify({ ...report, database_bytes: size.bytes, free_bytes: size.free_bytes }));
        } else {
          print(`pruned ${report.deliveries} deliveries, ${report.attempts} attempts and ${report.events} events in ${formatDuration(report.duration_ms)} ` +
            `(retention ${formatDuration(config.retentionMs)}, failed ${formatDuration(config.deadLetterRetentionMs)})`);
          print(`database ${(size.bytes / 1e6).toFixed(1)} MB, of which ${((size.free_bytes ?? 0) / 1e6).toFixed(1)} MB free for reuse`);
        }
      } finally {
        await storage.close();
      }
    });

  program
    .command('backup <file>')
    .description('write a consistent copy of the SQLite database to <file>, while the gateway runs (SQLite online backup)')
    .option('--force', 'replace <file> if it exists')
    .action(async (target: string, opts: { force?: boolean }) => {
      const source = databaseFile();
      const out = path.resolve(target);
      if (out === path.resolve(source)) throw new CliError(EXIT.usage, 'the backup must go to another file than the database itself');
      if (fs.existsSync(out)) {
        if (!opts.force) throw new CliError(EXIT.usage, `${out} exists; choose a new file or pass --force to replace it`);
        fs.rmSync(out);
      }
      if (!fs.existsSync(path.dirname(out))) throw new CliError(EXIT.usage, `the directory ${path.dirname(out)} does not exist`);
      const storage = new SqliteStorage(source);
      const started = performance.now();
      try {
        await storage.backup(out);
      } finally {
        await storage.close();
      }
      // Proof the copy opens and is whole, before anyone relies on it.
      const copy = new SqliteStorage(out);
      try {
        const check = copy.db.pragma('quick_check', { simple: true });
        if (check !== 'ok') throw new CliError(EXIT.refused, `the copy at ${out} failed its integrity check: ${String(check)}`);
      } finally {
        await copy.close();
      }
      print(`backed up ${source} to ${out} (${(fs.statSync(out).size / 1e6).toFixed(1)} MB in ${formatDuration(performance.now() - started)}); ` +
        'restore: stop the gateway, copy it over sluice.db, delete sluice.db-wal and sluice.db-shm, start. Keep master.key (or SLUICE_MASTER_KEY) with it.');
    });
}

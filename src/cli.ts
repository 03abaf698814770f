import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { ConfigError, loadConfig } from './config.ts';
import { createStorage } from './app.ts';
import { ApiKeyService, ROLES, toPublicKey } from './services/api-keys.ts';
import type { Role, Storage } from './storage/types.ts';
import { runMappingsTest } from './services/mappings-test-report.ts';
import { ConflictError, ValidationError } from './errors.ts';
import { CliError, EXIT } from './cli/exit-codes.ts';
import { registerDailyCommands } from './cli/daily-commands.ts';
import { registerConfigCommands } from './cli/apply-commands.ts';
import { registerLifecycleCommands } from './cli/lifecycle-commands.ts';

/** Opens the configured store directly: key commands work with or without a running gateway. */
async function openStorage(): Promise<Storage> {
  const config = loadConfig();
  const storage = createStorage(config);
  await storage.migrate();
  return storage;
}

async function withKeys<T>(fn: (keys: ApiKeyService) => Promise<T>): Promise<T> {
  const storage = await openStorage();
  try {
    return await fn(new ApiKeyService(storage));
  } finally {
    await storage.close();
  }
}

const program = new Command('sluice')
  .description('Sluice webhook gateway. Exit codes: 0 ok, 1 refused by the gateway, 2 bad usage or input, 3 gateway unreachable, 4 signature invalid (verify).')
  .showHelpAfterError()
  // Throw instead of exiting, so usage errors get their documented exit code (2).
  .exitOverride();

program
  .command('start')
  .description('start the gateway (same as npm start)')
  .action(async () => {
    await import('./main.ts');
  });

const keys = program.command('keys').description('manage API keys');
keys
  .command('create')
  .description('create an API key; it is printed once')
  .addOption(new Option('--role <role>', 'ingest, read or admin').choices(ROLES as string[]).makeOptionMandatory())
  .option('--name <name>', 'a label to recognise it by')
  .option('--rate-limit <events-per-second>', 'ingest quota: events per second (each event of a batch counts); 429 beyond it')
  .option('--burst <events>', 'events it may post at once above the rate (default: one second of --rate-limit)')
  .action(async (opts: { role: Role; name?: string; rateLimit?: string; burst?: string }) => {
    const number = (value: string | undefined) => (value === undefined ? undefined : /^\d+(\.\d+)?$/.test(value) ? Number(value) : value);
    const { record, key } = await withKeys((k) => k.create({ role: opts.role, name: opts.name, rate_limit: number(opts.rateLimit), rate_burst: number(opts.burst) })).catch((err: unknown) => {
      if (err instanceof ValidationError) throw new CliError(EXIT.usage, `${err.message} ${err.details.map((d) => `--${d.path === '$.rate_burst' ? 'burst' : 'rate-limit'} ${d.message}`).join('; ')}`);
      throw err;
    });
    process.stdout.write(`${key}\n`);
    process.stderr.write(`created ${record.role} key ${record.id} (prefix ${record.prefix}); store it now: it is not shown again\n`);
  });
keys
  .command('list')
  .description('list API keys (prefixes only)')
  .action(async () => {
    const list = await withKeys((k) => k.list());
    for (const key of list.map(toPublicKey)) {
      process.stdout.write(`${key.id}  ${key.role.padEnd(6)}  ${key.prefix}…  ${key.revoked_at ? 'revoked ' + key.revoked_at : 'active'}  ${key.name ?? ''}\n`);
    }
  });
keys
  .command('revoke <id>')
  .description('revoke an API key (the last admin key only with --force)')
  .option('--force', 'revoke even the last admin key: a deliberate lockout until a new one is created with `keys create --role admin`')
  .action(async (id: string, opts: { force?: boolean }) => {
    await withKeys((k) => k.revoke(id, { force: opts.force })).catch((err: unknown) => {
      if (err instanceof ConflictError && err.code === 'last_admin_key') throw new Error(`${err.message} (--force revokes it anyway: a deliberate lockout)`);
      throw err;
    });
    process.stdout.write(`revoked ${id}\n`);
  });

program
  .command('receive')
  .description('run a local webhook receiver that prints deliveries and checks their signatures')
  .option('--port <port>', 'port to listen on', '9000')
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option('--secret <whsec>', 'the subscription signing secret, to verify signatures')
  .option('--status <code>', 'HTTP status to answer with (500 to watch retries)', '200')
  .action(async (opts: { port: string; host: string; secret?: string; status: string }) => {
    const { startDevReceiver } = await import('./dev-receiver.ts');
    await startDevReceiver({ host: opts.host, port: Number(opts.port), secret: opts.secret, status: Number(opts.status), out: (line) => process.stdout.write(line + '\n') });
  });

const mappings = program.command('mappings').description('mapping templates');
mappings
  .command('test [name]')
  .description('run every template (or one) against its examples; non-zero exit on any failure')
  .option('--dir <dir>', 'mappings directory', process.env.SLUICE_MAPPINGS_DIR ?? 'mappings')
  .action(async (name: string | undefined, opts: { dir: string }) => {
    const code = await runMappingsTest({
      dir: path.resolve(opts.dir),
      name,
      envAllowlist: (process.env.SLUICE_TEMPLATE_ENV ?? '').split(',').filter(Boolean),
      out: (line: string) => process.stdout.write(line + '\n'),
    });
    process.exitCode = code;
  });

registerDailyCommands(program);
registerConfigCommands(program);
registerLifecycleCommands(program);

program.parseAsync(process.argv).catch((err: Error) => {
  if (err instanceof CommanderError) {
    // commander printed the message (or the help) already.
    process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    return;
  }
  process.stderr.write(`sluice: ${err.message}\n`);
  process.exitCode = err instanceof CliError ? err.exitCode : err instanceof ConfigError ? EXIT.usage : EXIT.refused;
});

import pg from 'pg';
import type { StorageChange } from '../types.ts';
import { clientConfig } from './connection.ts';

/** The one channel every instance listens on; the payload says what changed. */
export const CHANGES_CHANNEL = 'sluice_changes';
const KINDS: readonly StorageChange[] = ['work', 'subscriptions', 'keys'];

/**
 * A dedicated connection LISTENing for other instances' changes (LISTEN needs a session of its
 * own; a pooled one would be handed to other queries). It doubles as the health signal: while
 * it is down the database is unreachable, and it reconnects with backoff. After a reconnect
 * every kind of change is reported, since notifications sent meanwhile are lost.
 */
export class ChangeListener {
  #client: pg.Client | null = null;
  #connected = false;
  #closed = false;
  #retryMs = 100;
  #timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly url: string,
    private readonly onChange: (change: StorageChange) => void,
    private readonly onError: (err: Error) => void,
  ) {}

  get connected(): boolean {
    return this.#connected;
  }

  /** Resolves once listening; rejects if the first connection fails. */
  async start(): Promise<void> {
    await this.#connect();
  }

  async #connect(): Promise<void> {
    const client = new pg.Client({ ...clientConfig(this.url), statement_timeout: undefined });
    client.on('error', (err) => this.#lost(client, err));
    client.on('end', () => this.#lost(client, null));
    client.on('notification', (msg) => {
      const kind = msg.payload as StorageChange;
      if (KINDS.includes(kind)) this.onChange(kind);
    });
    this.#client = client;
    await client.connect();
    await client.query(`LISTEN ${CHANGES_CHANNEL}`);
    this.#connected = true;
    this.#retryMs = 100;
  }

  #lost(client: pg.Client, err: Error | null): void {
    if (client !== this.#client || this.#closed) return;
    if (err) this.onError(err);
    this.#connected = false;
    this.#client = null;
    client.removeAllListeners('end');
    client.end().catch(() => undefined);
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#connect().then(
        () => {
          for (const kind of KINDS) this.onChange(kind);
        },
        (err: Error) => {
          const client = this.#client;
          this.#client = null;
          client?.removeAllListeners('end');
          client?.end().catch(() => undefined);
          this.onError(err);
          this.#scheduleReconnect();
        },
      );
    }, this.#retryMs);
    this.#retryMs = Math.min(this.#retryMs * 2, 5_000);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    const client = this.#client;
    this.#client = null;
    this.#connected = false;
    await client?.end().catch(() => undefined);
  }
}

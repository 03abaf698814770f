import { promises as dns, type LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { buildConnector } from 'undici';
import { ValidationError } from '../errors.ts';
import { EMPTY_ALLOWLIST, isAllowlisted, isAlwaysForbiddenAddress, isForbiddenAddress, parseAllowlist, type AddressVerdict, type Matcher } from '../core/ssrf.ts';

/**
 * The SSRF guard at the two moments it matters: when a destination is saved (a clear 422 for
 * the user) and every time a connection is opened (so a name that later resolves to a private
 * address — DNS rebinding — is still refused). Both check every resolved address.
 */

/** Resolves a host name to all its addresses; injectable so tests need no network. */
export type Resolver = (hostname: string, family: 0 | 4 | 6) => Promise<LookupAddress[]>;

export const systemResolver: Resolver = (hostname, family) => dns.lookup(hostname, { all: true, family });

export interface GuardOptions {
  /**
   * SLUICE_ALLOW_INSECURE_URLS, for local development and tests: http:// and private and
   * loopback addresses are allowed; link-local and cloud metadata addresses still are not.
   */
  allowInsecure: boolean;
  /** SLUICE_SSRF_ALLOWLIST (comma-separated CIDRs and host names) or an already parsed one. */
  allowlist?: string | Matcher;
  resolve?: Resolver;
}

/** The error a refused connection fails with; `code` is `ESSRF` so callers can fail the delivery at once. */
export class SsrfError extends Error {
  readonly code = 'ESSRF';
  constructor(
    readonly host: string,
    readonly address: string,
    readonly range: string,
  ) {
    super(
      `refusing to connect to ${host === address ? address : `${host} (${address})`}: ` +
        `${range} addresses are not allowed as webhook destinations (SLUICE_SSRF_ALLOWLIST can exempt a network or host)`,
    );
    this.name = 'SsrfError';
  }
}

function toMatcher(allowlist: string | Matcher | undefined): Matcher {
  if (allowlist === undefined) return EMPTY_ALLOWLIST;
  return typeof allowlist === 'string' ? parseAllowlist(allowlist) : allowlist;
}

function normalizeHost(hostname: string): string {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** `localhost` and `*.localhost` are loopback by definition (RFC 6761), whatever DNS says. */
function isLocalhostName(host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost');
}

/** Which addresses a mode refuses. */
const judgeFor = (allowInsecure: boolean): ((ip: string) => AddressVerdict) => (allowInsecure ? isAlwaysForbiddenAddress : isForbiddenAddress);

/** The refusal for one destination, or null when it may be reached. */
function refusal(host: string, addresses: readonly string[], matcher: Matcher, allowInsecure: boolean): SsrfError | null {
  if (isAllowlisted(host, undefined, matcher)) return null;
  const judge = judgeFor(allowInsecure);
  for (const address of addresses) {
    if (isAllowlisted(undefined, address, matcher)) continue;
    const verdict = judge(address);
    if (verdict.forbidden) return new SsrfError(host, address, verdict.range ?? 'forbidden');
  }
  return null;
}

function familyOf(options: unknown): 0 | 4 | 6 {
  const family = typeof options === 'number' ? options : (options as { family?: unknown } | undefined)?.family;
  if (family === 4 || family === 'IPv4') return 4;
  if (family === 6 || family === 'IPv6') return 6;
  return 0;
}

/**
 * A `dns.lookup`-compatible function for `net.connect`'s (and undici's `connect`) `lookup`
 * option. It resolves the name and refuses with an `ESSRF` error if ANY resolved address is
 * forbidden, so a name mixing public and private records cannot be used to slip through.
 * Supports `options.all` (Node's happy-eyeballs connect asks for every address).
 */
export function createGuardedLookup(options: GuardOptions): LookupFunction {
  const matcher = toMatcher(options.allowlist);
  const resolve = options.resolve ?? systemResolver;

  const lookup = (hostname: string, lookupOptions: unknown, maybeCallback?: unknown): void => {
    const callback = (typeof lookupOptions === 'function' ? lookupOptions : maybeCallback) as Parameters<LookupFunction>[2];
    const opts = typeof lookupOptions === 'function' ? {} : lookupOptions;
    const all = Boolean((opts as { all?: boolean } | undefined)?.all);
    const host = normalizeHost(hostname);

    const answer = (addresses: LookupAddress[]): void => {
      if (addresses.length === 0) {
        callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND', hostname }), '');
        return;
      }
      const refused = refusal(host, addresses.map((a) => a.address), matcher, options.allowInsecure);
      if (refused) {
        callback(refused, '');
        return;
      }
      if (all) callback(null, addresses);
      else callback(null, addresses[0].address, addresses[0].family);
    };

    const literal = isIP(host);
    if (literal) {
      answer([{ address: host, family: literal }]);
      return;
    }
    if (!options.allowInsecure && isLocalhostName(host) && !isAllowlisted(host, undefined, matcher)) {
      callback(new SsrfError(hostname, '127.0.0.1', 'loopback'), '');
      return;
    }
    resolve(host, familyOf(opts)).then(answer, (err: NodeJS.ErrnoException) => callback(err, ''));
  };
  return lookup as LookupFunction;
}

/**
 * An undici connector (`new Agent({ connect: createGuardedConnector(...) })`) with the guarded
 * lookup, which also refuses IP-literal hosts: Node's net.connect skips `lookup` entirely for
 * those, so the lookup alone would let `https://127.0.0.1/` through.
 */
export function createGuardedConnector(options: GuardOptions & { connect?: buildConnector.BuildOptions }): buildConnector.connector {
  const matcher = toMatcher(options.allowlist);
  const lookup = createGuardedLookup({ ...options, allowlist: matcher });
  const connect = buildConnector({ ...options.connect, lookup } as buildConnector.BuildOptions);
  return (connectOptions, callback) => {
    const host = normalizeHost(connectOptions.hostname);
    if (isIP(host)) {
      const refused = refusal(host, [host], matcher, options.allowInsecure);
      if (refused) {
        callback(refused, null);
        return;
      }
    }
    connect(connectOptions, callback);
  };
}

export interface DestinationCheckOptions extends GuardOptions {
  /** Where the URL sits in the request body, for the error detail. */
  path?: string;
}

/**
 * Create-time check of a destination URL: it must parse, be http(s), use https unless insecure
 * URLs are allowed, and neither be nor resolve to a forbidden address. Throws a ValidationError
 * (422) whose detail carries `path`. A name that does not resolve right now is accepted: DNS
 * may be briefly down, and every connection is checked again by the guarded lookup.
 */
export async function assertDestinationAllowed(url: string, options: DestinationCheckOptions): Promise<void> {
  const path = options.path ?? '$.url';
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ValidationError('The destination URL is invalid.', [{ path, message: `"${url}" is not a valid absolute URL` }]);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new ValidationError('The destination URL is invalid.', [{ path, message: `must be an https:// URL, not ${parsed.protocol}//` }]);
  }
  if (parsed.username || parsed.password) {
    throw new ValidationError('The destination URL is invalid.', [{ path, message: 'must not carry a username or password; use the subscription\'s auth ({"type": "basic", ...}) so it is stored encrypted and masked' }]);
  }
  if (parsed.protocol === 'http:' && !options.allowInsecure) {
    throw new ValidationError('The destination URL is invalid.', [
      { path, message: 'must use https:// (plain http:// is only allowed with SLUICE_ALLOW_INSECURE_URLS=true, for local development)' },
    ]);
  }

  const matcher = toMatcher(options.allowlist);
  const host = normalizeHost(parsed.hostname);
  let refused: SsrfError | null;
  if (isIP(host)) {
    refused = refusal(host, [host], matcher, options.allowInsecure);
  } else if (isAllowlisted(host, undefined, matcher)) {
    refused = null;
  } else if (isLocalhostName(host)) {
    if (options.allowInsecure) return;
    refused = new SsrfError(host, '127.0.0.1', 'loopback');
  } else {
    let addresses: LookupAddress[];
    try {
      addresses = await (options.resolve ?? systemResolver)(host, 0);
    } catch {
      return;
    }
    refused = refusal(host, addresses.map((a) => a.address), matcher, options.allowInsecure);
  }
  if (refused) {
    throw new ValidationError(
      'The destination is not allowed.',
      [{ path, message: refused.message, host: refused.host, address: refused.address, range: refused.range }],
      'destination_forbidden',
    );
  }
}

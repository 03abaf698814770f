import type { LookupAddress } from 'node:dns';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, LookupFunction } from 'node:net';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ValidationError } from '../../src/errors.ts';
import {
  assertDestinationAllowed,
  createGuardedConnector,
  createGuardedLookup,
  SsrfError,
  type Resolver,
} from '../../src/delivery/ssrf-lookup.ts';

/** A resolver from a fixed table, so no test depends on real DNS. */
function fakeResolver(table: Record<string, string[]>): Resolver & ReturnType<typeof vi.fn> {
  return vi.fn(async (hostname: string, family: 0 | 4 | 6) => {
    const addresses = table[hostname];
    if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    return addresses
      .map((address): LookupAddress => ({ address, family: address.includes(':') ? 6 : 4 }))
      .filter((a) => family === 0 || a.family === family);
  });
}

const table = {
  'public.example': ['93.184.216.34'],
  'dual.example': ['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946'],
  'sneaky.example': ['93.184.216.34', '10.0.0.5'],
  'metadata.example': ['169.254.169.254'],
  'mapped.example': ['::ffff:127.0.0.1'],
  'internal.example': ['10.1.2.3'],
  'hooks.internal.example': ['192.168.1.20'],
  'loopback.test': ['127.0.0.1'],
};

type LookupResult = { err: NodeJS.ErrnoException | null; address: string | LookupAddress[]; family?: number };

function lookupAsync(lookup: LookupFunction, hostname: string, options: object): Promise<LookupResult> {
  return new Promise((resolve) => lookup(hostname, options, (err, address, family) => resolve({ err, address, family })));
}

describe('createGuardedLookup', () => {
  it('answers public names like dns.lookup, single and all', async () => {
    const lookup = createGuardedLookup({ allowInsecure: false, resolve: fakeResolver(table) });
    expect(await lookupAsync(lookup, 'public.example', {})).toEqual({ err: null, address: '93.184.216.34', family: 4 });
    expect(await lookupAsync(lookup, 'dual.example', { all: true })).toEqual({
      err: null,
      address: [
        { address: '93.184.216.34', family: 4 },
        { address: '2606:2800:220:1:248:1893:25c8:1946', family: 6 },
      ],
      family: undefined,
    });
  });

  it('passes the requested family to the resolver', async () => {
    const resolve = fakeResolver(table);
    const lookup = createGuardedLookup({ allowInsecure: false, resolve });
    expect((await lookupAsync(lookup, 'dual.example', { family: 6 })).address).toBe('2606:2800:220:1:248:1893:25c8:1946');
    expect(resolve).toHaveBeenCalledWith('dual.example', 6);
  });

  it('also accepts the (hostname, callback) form', async () => {
    const lookup = createGuardedLookup({ allowInsecure: false, resolve: fakeResolver(table) }) as unknown as (
      h: string,
      cb: (err: Error | null, address: string) => void,
    ) => void;
    const address = await new Promise((resolve) => lookup('public.example', (_err, a) => resolve(a)));
    expect(address).toBe('93.184.216.34');
  });

  it.each([
    ['internal.example', '10.1.2.3', 'private'],
    ['metadata.example', '169.254.169.254', 'linkLocal'],
    ['mapped.example', '::ffff:127.0.0.1', 'ipv4Mapped:loopback'],
    ['loopback.test', '127.0.0.1', 'loopback'],
  ])('refuses %s (%s, %s) with ESSRF naming host, address and range', async (host, address, range) => {
    const lookup = createGuardedLookup({ allowInsecure: false, resolve: fakeResolver(table) });
    for (const options of [{}, { all: true }]) {
      const { err } = await lookupAsync(lookup, host, options);
      expect(err).toBeInstanceOf(SsrfError);
      expect(err).toMatchObject({ code: 'ESSRF', host, address, range });
      expect(err!.message).toContain(host);
      expect(err!.message).toContain(address);
      expect(err!.message).toContain(range);
    }
  });

  it('refuses a name when any of its addresses is forbidden', async () => {
    const lookup = createGuardedLookup({ allowInsecure: false, resolve: fakeResolver(table) });
    const { err } = await lookupAsync(lookup, 'sneaky.example', { all: true });
    expect(err).toMatchObject({ code: 'ESSRF', address: '10.0.0.5' });
  });

  it('refuses localhost names without asking DNS', async () => {
    const resolve = fakeResolver(table);
    const lookup = createGuardedLookup({ allowInsecure: false, resolve });
    expect((await lookupAsync(lookup, 'localhost', {})).err).toMatchObject({ code: 'ESSRF', range: 'loopback' });
    expect((await lookupAsync(lookup, 'api.localhost', {})).err).toMatchObject({ code: 'ESSRF' });
    expect(resolve).not.toHaveBeenCalled();
  });

  it('checks IP literals directly', async () => {
    const resolve = fakeResolver(table);
    const lookup = createGuardedLookup({ allowInsecure: false, resolve });
    expect(await lookupAsync(lookup, '93.184.216.34', {})).toEqual({ err: null, address: '93.184.216.34', family: 4 });
    expect((await lookupAsync(lookup, '127.0.0.1', {})).err).toMatchObject({ code: 'ESSRF' });
    expect((await lookupAsync(lookup, '::1', { all: true })).err).toMatchObject({ code: 'ESSRF' });
    expect(resolve).not.toHaveBeenCalled();
  });

  it('lets allowlisted networks and host names through', async () => {
    const lookup = createGuardedLookup({ allowInsecure: false, allowlist: '10.0.0.0/8,hooks.internal.example', resolve: fakeResolver(table) });
    expect((await lookupAsync(lookup, 'internal.example', {})).address).toBe('10.1.2.3');
    expect((await lookupAsync(lookup, 'hooks.internal.example', {})).address).toBe('192.168.1.20');
    expect((await lookupAsync(lookup, 'metadata.example', {})).err).toMatchObject({ code: 'ESSRF' });
  });

  it('allows everything when insecure URLs are allowed', async () => {
    const lookup = createGuardedLookup({ allowInsecure: true, resolve: fakeResolver({ ...table, localhost: ['127.0.0.1'] }) });
    expect(await lookupAsync(lookup, 'internal.example', {})).toEqual({ err: null, address: '10.1.2.3', family: 4 });
    expect((await lookupAsync(lookup, 'localhost', {})).address).toBe('127.0.0.1');
    expect((await lookupAsync(lookup, '127.0.0.1', {})).address).toBe('127.0.0.1');
  });

  it('still refuses link-local and cloud metadata addresses when insecure URLs are allowed', async () => {
    const lookup = createGuardedLookup({ allowInsecure: true, resolve: fakeResolver({ ...table, 'aws6.example': ['fd00:ec2::254'] }) });
    expect((await lookupAsync(lookup, 'metadata.example', {})).err).toMatchObject({ code: 'ESSRF', range: 'linkLocal' });
    expect((await lookupAsync(lookup, '169.254.169.254', {})).err).toMatchObject({ code: 'ESSRF' });
    expect((await lookupAsync(lookup, 'aws6.example', {})).err).toMatchObject({ code: 'ESSRF', range: 'cloudMetadata' });
    expect((await lookupAsync(lookup, '100.100.100.200', {})).err).toMatchObject({ code: 'ESSRF' });
    expect((await lookupAsync(lookup, '::ffff:169.254.169.254', {})).err).toMatchObject({ code: 'ESSRF' });
  });

  it('passes resolver errors through', async () => {
    const lookup = createGuardedLookup({ allowInsecure: false, resolve: fakeResolver(table) });
    expect((await lookupAsync(lookup, 'nowhere.example', {})).err).toMatchObject({ code: 'ENOTFOUND' });
  });
});

describe('assertDestinationAllowed', () => {
  const secure = { allowInsecure: false, resolve: fakeResolver(table) };

  async function rejection(url: string, options: Parameters<typeof assertDestinationAllowed>[1] = secure): Promise<ValidationError> {
    const err = await assertDestinationAllowed(url, options).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ValidationError);
    return err as ValidationError;
  }

  it('accepts public https destinations, by name or literal IP, without network', async () => {
    await expect(assertDestinationAllowed('https://public.example/hooks', secure)).resolves.toBeUndefined();
    await expect(assertDestinationAllowed('https://93.184.216.34/hooks', secure)).resolves.toBeUndefined();
    await expect(assertDestinationAllowed('https://[2606:4700:4700::1111]:8443/x', secure)).resolves.toBeUndefined();
  });

  it.each([
    ['https://127.0.0.1/hook', '127.0.0.1'],
    ['https://[::1]/hook', '::1'],
    ['https://169.254.169.254/latest/meta-data', '169.254.169.254'],
    ['https://2130706433/', '127.0.0.1'], // WHATWG URL normalises legacy notations
    ['https://[::ffff:10.0.0.1]/', '::ffff:a00:1'],
    ['https://internal.example/hook', '10.1.2.3'],
    ['https://sneaky.example/hook', '10.0.0.5'],
    ['https://localhost:8443/hook', '127.0.0.1'],
  ])('refuses %s as destination_forbidden at $.url', async (url, address) => {
    const err = await rejection(url);
    expect(err.status).toBe(422);
    expect(err.code).toBe('destination_forbidden');
    expect(err.details).toEqual([expect.objectContaining({ path: '$.url', address, message: expect.stringContaining(address) })]);
  });

  it('uses the given path', async () => {
    const err = await rejection('https://10.0.0.1/', { ...secure, path: '$.connector_options' });
    expect(err.details[0].path).toBe('$.connector_options');
  });

  it('requires https unless insecure URLs are allowed', async () => {
    const err = await rejection('http://public.example/hook');
    expect(err.code).toBe('validation_failed');
    expect(err.details).toEqual([{ path: '$.url', message: expect.stringMatching(/https/) }]);
    await expect(assertDestinationAllowed('http://public.example/hook', { ...secure, allowInsecure: true })).resolves.toBeUndefined();
  });

  it.each(['not a url', 'ftp://public.example/x', 'file:///etc/passwd', 'javascript:alert(1)'])('refuses %j as an invalid URL', async (url) => {
    const err = await rejection(url, { ...secure, allowInsecure: true });
    expect(err.details[0].path).toBe('$.url');
  });

  it('allows private and loopback destinations when insecure URLs are allowed', async () => {
    const options = { allowInsecure: true, resolve: fakeResolver(table) };
    await expect(assertDestinationAllowed('http://127.0.0.1:3000/hook', options)).resolves.toBeUndefined();
    await expect(assertDestinationAllowed('http://localhost:3000/hook', options)).resolves.toBeUndefined();
    await expect(assertDestinationAllowed('https://internal.example/hook', options)).resolves.toBeUndefined();
  });

  it('refuses link-local and metadata destinations even when insecure URLs are allowed', async () => {
    const options = { allowInsecure: true, resolve: fakeResolver(table) };
    for (const url of ['http://169.254.169.254/latest/meta-data/', 'http://[fe80::1]/', 'http://metadata.example/', 'http://[fd00:ec2::254]/', 'http://100.100.100.200/']) {
      expect((await rejection(url, options)).code, url).toBe('destination_forbidden');
    }
  });

  it('honours the allowlist', async () => {
    const options = { ...secure, allowlist: '10.0.0.0/8,hooks.internal.example' };
    await expect(assertDestinationAllowed('https://internal.example/hook', options)).resolves.toBeUndefined();
    await expect(assertDestinationAllowed('https://10.9.8.7/hook', options)).resolves.toBeUndefined();
    await expect(assertDestinationAllowed('https://hooks.internal.example/hook', options)).resolves.toBeUndefined();
    expect((await rejection('https://metadata.example/', options)).code).toBe('destination_forbidden');
  });

  it('accepts a name that does not resolve right now (each connection is checked again)', async () => {
    await expect(assertDestinationAllowed('https://nowhere.example/hook', secure)).resolves.toBeUndefined();
  });
});

describe('SsrfError and lookup details', () => {
  it('says which host, address and range, and how to exempt them', () => {
    const named = new SsrfError('internal.example', '10.1.2.3', 'private');
    expect(named.message).toBe(
      'refusing to connect to internal.example (10.1.2.3): private addresses are not allowed as webhook destinations (SLUICE_SSRF_ALLOWLIST can exempt a network or host)',
    );
    expect(named.name).toBe('SsrfError');
    expect(named.code).toBe('ESSRF');
    expect(new SsrfError('10.1.2.3', '10.1.2.3', 'private').message).toMatch(/^refusing to connect to 10\.1\.2\.3: private addresses/);
  });

  it('answers ENOTFOUND, naming the host, when a name has no address', async () => {
    const lookup = createGuardedLookup({ allowInsecure: false, resolve: async () => [] });
    const { err } = await lookupAsync(lookup, 'empty.example', {});
    expect(err).toMatchObject({ code: 'ENOTFOUND', hostname: 'empty.example', message: 'getaddrinfo ENOTFOUND empty.example' });
  });

  it('reads the family as a number, IPv4/IPv6, or leaves it open', async () => {
    const resolve = fakeResolver(table);
    const lookup = createGuardedLookup({ allowInsecure: false, resolve });
    await lookupAsync(lookup, 'dual.example', { family: 'IPv4' });
    await lookupAsync(lookup, 'dual.example', { family: 'IPv6' });
    await lookupAsync(lookup, 'dual.example', { family: 4 });
    await lookupAsync(lookup, 'dual.example', { family: 'other' });
    await new Promise((done) => (lookup as unknown as (h: string, f: number, cb: () => void) => void)('dual.example', 6, () => done(undefined)));
    expect(resolve.mock.calls.map((call) => call[1])).toEqual([4, 6, 4, 0, 6]);
  });

  it('normalizes the name first: case, a trailing dot, brackets around an IPv6 literal', async () => {
    const resolve = fakeResolver(table);
    const lookup = createGuardedLookup({ allowInsecure: false, resolve });
    expect((await lookupAsync(lookup, 'PUBLIC.Example.', {})).address).toBe('93.184.216.34');
    expect(resolve).toHaveBeenCalledWith('public.example', 0);
    expect((await lookupAsync(lookup, '[::1]', {})).err).toMatchObject({ code: 'ESSRF', address: '::1' });
    expect((await lookupAsync(lookup, 'LOCALHOST.', {})).err).toMatchObject({ code: 'ESSRF', host: 'LOCALHOST.', address: '127.0.0.1', range: 'loopback' });
  });

  it('strips only a balanced pair of brackets: a name with one bracket is no IP literal and goes to the resolver as is', async () => {
    const resolve = fakeResolver(table);
    const lookup = createGuardedLookup({ allowInsecure: false, resolve });
    for (const name of ['[::1', '::1]', '[public.example', 'public.example]']) {
      expect((await lookupAsync(lookup, name, {})).err).toMatchObject({ code: 'ENOTFOUND' });
    }
    expect(resolve.mock.calls).toEqual([['[::1', 0], ['::1]', 0], ['[public.example', 0], ['public.example]', 0]]);
  });

  it('treats only localhost and its subdomains as localhost', async () => {
    const resolve = fakeResolver({ ...table, 'mylocalhost': ['93.184.216.34'], 'localhost.example': ['93.184.216.34'] });
    const lookup = createGuardedLookup({ allowInsecure: false, resolve });
    expect((await lookupAsync(lookup, 'mylocalhost', {})).address).toBe('93.184.216.34');
    expect((await lookupAsync(lookup, 'localhost.example', {})).address).toBe('93.184.216.34');
  });

  it('asks DNS for an allowlisted localhost name, and still judges its addresses', async () => {
    const lookup = createGuardedLookup({ allowInsecure: false, allowlist: 'api.localhost', resolve: fakeResolver({ 'api.localhost': ['127.0.0.1'], 'db.localhost': ['127.0.0.1'] }) });
    expect((await lookupAsync(lookup, 'api.localhost', {})).address).toBe('127.0.0.1');
    expect((await lookupAsync(lookup, 'db.localhost', {})).err).toMatchObject({ code: 'ESSRF', address: '127.0.0.1' });
  });

  it('takes an allowlist already parsed', async () => {
    const { parseAllowlist } = await import('../../src/core/ssrf.ts');
    const lookup = createGuardedLookup({ allowInsecure: false, allowlist: parseAllowlist('10.0.0.0/8'), resolve: fakeResolver(table) });
    expect((await lookupAsync(lookup, 'internal.example', {})).address).toBe('10.1.2.3');
  });
});

describe('assertDestinationAllowed: messages', () => {
  const secure = { allowInsecure: false, resolve: fakeResolver(table) };
  const details = (url: string, options: Parameters<typeof assertDestinationAllowed>[1] = secure) =>
    assertDestinationAllowed(url, options).then(
      () => undefined,
      (e: ValidationError) => ({ message: e.message, code: e.code, details: e.details }),
    );

  it('explains each refusal of the URL itself', async () => {
    expect(await details('not a url')).toEqual({ message: 'The destination URL is invalid.', code: 'validation_failed', details: [{ path: '$.url', message: '"not a url" is not a valid absolute URL' }] });
    expect(await details('ftp://public.example/x')).toEqual({ message: 'The destination URL is invalid.', code: 'validation_failed', details: [{ path: '$.url', message: 'must be an https:// URL, not ftp://' }] });
    expect(await details('https://user:pw@public.example/')).toEqual({ message: 'The destination URL is invalid.', code: 'validation_failed', details: [
      { path: '$.url', message: 'must not carry a username or password; use the subscription\'s auth ({"type": "basic", ...}) so it is stored encrypted and masked' },
    ] });
    expect((await details('https://user@public.example/'))!.details[0].message).toMatch(/^must not carry a username or password/);
    expect((await details('https://:pw@public.example/'))!.details[0].message).toMatch(/^must not carry a username or password/);
    expect(await details('http://public.example/')).toEqual({ message: 'The destination URL is invalid.', code: 'validation_failed', details: [
      { path: '$.url', message: 'must use https:// (plain http:// is only allowed with SLUICE_ALLOW_INSECURE_URLS=true, for local development)' },
    ] });
  });

  it('names host, address and range of a forbidden destination', async () => {
    expect(await details('https://internal.example/x')).toEqual({
      message: 'The destination is not allowed.',
      code: 'destination_forbidden',
      details: [{ path: '$.url', message: new SsrfError('internal.example', '10.1.2.3', 'private').message, host: 'internal.example', address: '10.1.2.3', range: 'private' }],
    });
    expect((await details('https://LocalHost./x'))!.details[0]).toMatchObject({ host: 'localhost', address: '127.0.0.1', range: 'loopback' });
    expect((await details('https://[fe80::1]/x', { ...secure, allowInsecure: true }))!.details[0]).toMatchObject({ host: 'fe80::1', address: 'fe80::1', range: 'linkLocal' });
  });

  it('exempts an allowlisted localhost name without DNS, and judges other names by every address', async () => {
    const resolve = fakeResolver(table);
    await expect(assertDestinationAllowed('https://api.localhost/x', { allowInsecure: false, allowlist: 'api.localhost', resolve })).resolves.toBeUndefined();
    expect(resolve).not.toHaveBeenCalled();
    await expect(assertDestinationAllowed('https://public.example/x', { allowInsecure: false, resolve })).resolves.toBeUndefined();
    expect(resolve).toHaveBeenCalledWith('public.example', 0);
  });
});

describe('guarded undici Agent against a real loopback server', () => {
  let server: Server;
  let port: number;
  const loopbackOnly: Resolver = async () => [{ address: '127.0.0.1', family: 4 }];

  beforeAll(async () => {
    server = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  async function attempt(url: string, agent: Agent): Promise<{ status?: number; body?: string; error?: NodeJS.ErrnoException }> {
    try {
      const res = await request(url, { dispatcher: agent });
      return { status: res.statusCode, body: await res.body.text() };
    } catch (error) {
      return { error: error as NodeJS.ErrnoException };
    } finally {
      await agent.close();
    }
  }

  it('refuses http://localhost with ESSRF when insecure URLs are not allowed', async () => {
    const agent = new Agent({ connect: { lookup: createGuardedLookup({ allowInsecure: false }) } });
    const { status, error } = await attempt(`http://localhost:${port}/`, agent);
    expect(status).toBeUndefined();
    expect(error).toMatchObject({ code: 'ESSRF' });
    expect(error!.message).toMatch(/localhost/);
  });

  it('refuses a name resolving to loopback', async () => {
    const agent = new Agent({ connect: { lookup: createGuardedLookup({ allowInsecure: false, resolve: loopbackOnly }) } });
    const { error } = await attempt(`http://hooks.test:${port}/`, agent);
    expect(error).toMatchObject({ code: 'ESSRF', address: '127.0.0.1', range: 'loopback' });
  });

  it('reaches the server when insecure URLs are allowed', async () => {
    const agent = new Agent({ connect: { lookup: createGuardedLookup({ allowInsecure: true, resolve: loopbackOnly }) } });
    expect(await attempt(`http://localhost:${port}/`, agent)).toEqual({ status: 200, body: 'ok' });
  });

  it('reaches the server when its network is allowlisted', async () => {
    const agent = new Agent({ connect: { lookup: createGuardedLookup({ allowInsecure: false, allowlist: '127.0.0.0/8', resolve: loopbackOnly }) } });
    expect(await attempt(`http://hooks.test:${port}/`, agent)).toEqual({ status: 200, body: 'ok' });
  });

  it('lookup alone is never consulted for IP-literal URLs (Node skips it), so use the guarded connector', async () => {
    const lookup = vi.fn(createGuardedLookup({ allowInsecure: false }));
    const lookupOnly = new Agent({ connect: { lookup: lookup as unknown as LookupFunction } });
    expect(await attempt(`http://127.0.0.1:${port}/`, lookupOnly)).toEqual({ status: 200, body: 'ok' });
    expect(lookup).not.toHaveBeenCalled();

    const guarded = new Agent({ connect: createGuardedConnector({ allowInsecure: false }) });
    const { error } = await attempt(`http://127.0.0.1:${port}/`, guarded);
    expect(error).toMatchObject({ code: 'ESSRF', address: '127.0.0.1' });
  });

  it('the guarded connector also guards names, and steps aside when insecure URLs are allowed', async () => {
    const refused = await attempt(`http://hooks.test:${port}/`, new Agent({ connect: createGuardedConnector({ allowInsecure: false, resolve: loopbackOnly }) }));
    expect(refused.error).toMatchObject({ code: 'ESSRF' });
    const allowed = new Agent({ connect: createGuardedConnector({ allowInsecure: true, resolve: loopbackOnly, connect: { timeout: 5_000 } }) });
    expect(await attempt(`http://127.0.0.1:${port}/`, allowed)).toEqual({ status: 200, body: 'ok' });
  });

  it('the guarded connector judges a name by its resolved addresses, not as an address itself', async () => {
    const insecure = new Agent({ connect: createGuardedConnector({ allowInsecure: true, resolve: loopbackOnly }) });
    expect(await attempt(`http://hooks.test:${port}/`, insecure)).toEqual({ status: 200, body: 'ok' });
    const allowlisted = new Agent({ connect: createGuardedConnector({ allowInsecure: false, allowlist: '127.0.0.0/8', resolve: loopbackOnly }) });
    expect(await attempt(`http://hooks.test:${port}/`, allowlisted)).toEqual({ status: 200, body: 'ok' });
  });
});

import ipaddr from 'ipaddr.js';

/**
 * Which addresses a webhook may never reach (server-side request forgery guard), and the
 * operator's allowlist that exempts chosen networks and hosts. Pure: resolving names and
 * refusing connections happens in delivery/ssrf-lookup.ts.
 *
 * The rule is "public unicast only": an IPv4 address must be in no special range known to
 * ipaddr.js (loopback, private, link-local incl. 169.254.169.254, CGNAT, multicast, broadcast,
 * unspecified, reserved, documentation, benchmarking...); an IPv6 address must be plain global
 * unicast (2000::/3 and in no special range), and the forms that embed an IPv4 address
 * (mapped, translated, NAT64, 6to4) are judged by that IPv4 address.
 */

export interface AddressVerdict {
  forbidden: boolean;
  /** The special range that forbids it, e.g. `loopback`, `private`, `ipv4Mapped:linkLocal`. */
  range?: string;
}

type Address = ipaddr.IPv4 | ipaddr.IPv6;

const ALLOWED: AddressVerdict = { forbidden: false };
const GLOBAL_UNICAST_V6 = ipaddr.IPv6.parseCIDR('2000::/3');

/** Whether an IP address (v4 or v6, as text) is off limits for outbound webhooks. Junk is forbidden. */
export function isForbiddenAddress(ip: string): AddressVerdict {
  let address: Address;
  try {
    address = ipaddr.parse(stripBrackets(ip));
  } catch {
    return { forbidden: true, range: 'invalid' };
  }
  return judge(address);
}

/**
 * Cloud metadata endpoints outside link-local: AWS's IPv6 one (in fd00::/8) and Alibaba's (in
 * CGNAT space). With link-local (169.254.169.254, fe80::/10) they stay refused even in insecure
 * mode: a gateway in a cloud VM would otherwise hand out its instance credentials.
 */
const METADATA_ADDRESSES = new Set(['fd00:ec2:0:0:0:0:0:254', '100.100.100.200']);

/** The addresses refused in every mode, SLUICE_ALLOW_INSECURE_URLS included: link-local and cloud metadata. */
export function isAlwaysForbiddenAddress(ip: string): AddressVerdict {
  const verdict = isForbiddenAddress(ip);
  if (verdict.range === 'linkLocal' || verdict.range?.endsWith(':linkLocal')) return verdict;
  try {
    const address = ipaddr.process(stripBrackets(ip));
    if (METADATA_ADDRESSES.has(address.toNormalizedString())) return { forbidden: true, range: 'cloudMetadata' };
  } catch {
    return { forbidden: true, range: 'invalid' };
  }
  return ALLOWED;
}

function judge(address: Address): AddressVerdict {
  if (address.kind() === 'ipv4') {
    const range = address.range();
    return range === 'unicast' ? ALLOWED : { forbidden: true, range };
  }
  const v6 = address as ipaddr.IPv6;
  const range = v6.range();
  const embedded = embeddedIPv4(v6, range);
  if (embedded) {
    const inner = judge(embedded);
    return inner.forbidden ? { forbidden: true, range: `${range}:${inner.range}` } : ALLOWED;
  }
  if (range !== 'unicast') return { forbidden: true, range };
  // Outside 2000::/3 nothing is assigned for global unicast (this also catches the
  // deprecated IPv4-compatible ::a.b.c.d form).
  if (!v6.match(GLOBAL_UNICAST_V6)) return { forbidden: true, range: 'reserved' };
  return ALLOWED;
}

/**
 * The IPv4 address inside an IPv6 form that carries one, where its position is fixed:
 * ::ffff:a.b.c.d (mapped), ::ffff:0:a.b.c.d (RFC 6145), 64:ff9b::a.b.c.d (NAT64 well-known
 * prefix) and 2002:AABB:CCDD::/48 (6to4). Teredo and the local-use NAT64 prefix
 * 64:ff9b:1::/48 get no embedded address, so they are refused as a whole.
 */
function embeddedIPv4(v6: ipaddr.IPv6, range: string): ipaddr.IPv4 | undefined {
  const p = v6.parts;
  const lastTwo = () => new ipaddr.IPv4([p[6] >> 8, p[6] & 0xff, p[7] >> 8, p[7] & 0xff]);
  switch (range) {
    case 'ipv4Mapped':
    case 'rfc6145':
      return lastTwo();
    case 'rfc6052':
      return p[2] === 0 && p[3] === 0 && p[4] === 0 && p[5] === 0 ? lastTwo() : undefined;
    case '6to4':
      return new ipaddr.IPv4([p[1] >> 8, p[1] & 0xff, p[2] >> 8, p[2] & 0xff]);
    default:
      return undefined;
  }
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function normalizeHost(host: string): string {
  return stripBrackets(host.trim().toLowerCase()).replace(/\.$/, '');
}

/** The operator's SSRF allowlist, parsed once. */
export interface Matcher {
  readonly cidrs: readonly [Address, number][];
  /** Exact host names, lower case, without a trailing dot. */
  readonly hostnames: ReadonlySet<string>;
  /** From `*.example.com` entries: `.example.com` (any subdomain, not the apex). */
  readonly suffixes: readonly string[];
}

const HOSTNAME = /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

/**
 * Parses a comma-separated allowlist (`10.0.0.0/8,fd00::/8,192.0.2.7,hooks.internal.example,*.corp.example`):
 * CIDRs, single addresses, exact host names, and `*.` wildcards for subdomains.
 * Throws an Error naming the first entry it cannot read.
 */
export function parseAllowlist(list: string): Matcher {
  const cidrs: [Address, number][] = [];
  const hostnames = new Set<string>();
  const suffixes: string[] = [];
  for (const raw of list.split(',')) {
    const entry = normalizeHost(raw);
    if (entry === '') continue;
    if (entry.includes('/')) {
      if (!ipaddr.IPv4.isValidCIDRFourPartDecimal(entry) && !ipaddr.IPv6.isValidCIDR(entry)) throw new Error(`SSRF allowlist entry "${raw.trim()}" is not a valid CIDR`);
      cidrs.push(ipaddr.parseCIDR(entry));
    } else if (ipaddr.isValid(entry) && (entry.includes(':') || ipaddr.IPv4.isValidFourPartDecimal(entry))) {
      const address = ipaddr.parse(entry);
      cidrs.push([address, address.kind() === 'ipv4' ? 32 : 128]);
    } else if (entry.startsWith('*.') && HOSTNAME.test(entry.slice(2))) {
      suffixes.push(entry.slice(1));
    } else if (HOSTNAME.test(entry) && !/^[\d.]+$/.test(entry)) {
      hostnames.add(entry);
    } else {
      throw new Error(`SSRF allowlist entry "${raw.trim()}" is neither a CIDR, an IP address nor a host name`);
    }
  }
  return { cidrs, hostnames, suffixes };
}

/** The allowlist with nothing in it. */
export const EMPTY_ALLOWLIST: Matcher = parseAllowlist('');

/**
 * Whether a destination is exempt from the guard: its host name is listed, or its address
 * lies in a listed network (an IPv4-mapped IPv6 address also matches IPv4 networks).
 */
export function isAllowlisted(host: string | undefined, ip: string | undefined, matcher: Matcher): boolean {
  if (host) {
    const name = normalizeHost(host);
    if (matcher.hostnames.has(name)) return true;
    if (matcher.suffixes.some((suffix) => name.endsWith(suffix))) return true;
  }
  if (!ip || matcher.cidrs.length === 0) return false;
  let address: Address;
  try {
    address = ipaddr.parse(stripBrackets(ip));
  } catch {
    return false;
  }
  const candidates: Address[] = [address];
  if (address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress()) candidates.push((address as ipaddr.IPv6).toIPv4Address());
  return candidates.some((candidate) =>
    matcher.cidrs.some(([network, bits]) => network.kind() === candidate.kind() && candidate.match(network, bits)),
  );
}

import { describe, expect, it } from 'vitest';
import { EMPTY_ALLOWLIST, isAllowlisted, isAlwaysForbiddenAddress, isForbiddenAddress, parseAllowlist } from '../../src/core/ssrf.ts';

describe('isForbiddenAddress: IPv4', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.0.0.1', 'private'],
    ['10.255.255.255', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.10', 'private'],
    ['169.254.169.254', 'linkLocal'],
    ['169.254.0.1', 'linkLocal'],
    ['100.64.0.1', 'carrierGradeNat'],
    ['100.127.255.255', 'carrierGradeNat'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['192.0.0.8', 'reserved'],
    ['192.0.2.1', 'reserved'], // TEST-NET-1
    ['198.51.100.7', 'reserved'], // TEST-NET-2
    ['203.0.113.9', 'reserved'], // TEST-NET-3
    ['198.18.0.1', 'reserved'], // benchmarking
    ['240.0.0.1', 'reserved'],
    ['192.88.99.1', 'reserved'], // 6to4 relay anycast
  ])('%s is forbidden (%s)', (ip, range) => {
    expect(isForbiddenAddress(ip)).toEqual({ forbidden: true, range });
  });

  it.each(['93.184.216.34', '8.8.8.8', '1.1.1.1', '172.15.255.255', '172.32.0.1', '100.63.255.255', '100.128.0.1', '169.253.255.255', '11.0.0.1', '192.167.1.1'])(
    '%s is allowed',
    (ip) => {
      expect(isForbiddenAddress(ip)).toEqual({ forbidden: false });
    },
  );
});

describe('isForbiddenAddress: IPv6', () => {
  it.each([
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['::', 'unspecified'],
    ['fe80::1', 'linkLocal'],
    ['fe80::1%eth0', 'linkLocal'],
    ['febf:ffff::1', 'linkLocal'],
    ['fc00::1', 'uniqueLocal'],
    ['fd12:3456:789a::1', 'uniqueLocal'],
    ['ff02::1', 'multicast'],
    ['ff05::1:3', 'multicast'],
    ['2001:db8::1', 'reserved'], // documentation
    ['100::1', 'discard'],
    ['fec0::1', 'deprecatedSiteLocal'],
    ['2001::1', 'teredo'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'teredo'],
    ['64:ff9b:1::a00:1', 'rfc6052'], // local-use NAT64 prefix: refused whole
    ['::7f00:1', 'reserved'], // deprecated IPv4-compatible ::127.0.0.1
    ['::808:808', 'reserved'], // even with a public v4 inside
    ['4000::1', 'reserved'], // outside 2000::/3
  ])('%s is forbidden (%s)', (ip, range) => {
    expect(isForbiddenAddress(ip)).toEqual({ forbidden: true, range });
  });

  it.each(['2606:4700:4700::1111', '2001:4860:4860::8888', '2a00:1450:4001:80b::200e', '[2606:4700:4700::1001]'])('%s is allowed', (ip) => {
    expect(isForbiddenAddress(ip)).toEqual({ forbidden: false });
  });
});

describe('isForbiddenAddress: IPv6 forms embedding an IPv4 address', () => {
  it.each([
    ['::ffff:127.0.0.1', 'ipv4Mapped:loopback'],
    ['::ffff:7f00:1', 'ipv4Mapped:loopback'],
    ['::ffff:10.1.2.3', 'ipv4Mapped:private'],
    ['::ffff:169.254.169.254', 'ipv4Mapped:linkLocal'],
    ['::ffff:0.0.0.0', 'ipv4Mapped:unspecified'],
    ['::ffff:0:192.168.0.1', 'rfc6145:private'],
    ['64:ff9b::127.0.0.1', 'rfc6052:loopback'],
    ['64:ff9b::a9fe:a9fe', 'rfc6052:linkLocal'],
    ['2002:7f00:1::', '6to4:loopback'],
    ['2002:c0a8:101::1', '6to4:private'],
    ['2002:a9fe:a9fe:1::1', '6to4:linkLocal'],
  ])('%s is forbidden (%s)', (ip, range) => {
    expect(isForbiddenAddress(ip)).toEqual({ forbidden: true, range });
  });

  it.each(['::ffff:93.184.216.34', '64:ff9b::8.8.8.8', '2002:5db8:d822::1'])('%s embeds a public address and is allowed', (ip) => {
    expect(isForbiddenAddress(ip)).toEqual({ forbidden: false });
  });
});

describe('isForbiddenAddress: junk', () => {
  it.each(['', 'localhost', 'example.com', '999.1.1.1', '1.2.3.4.5', '::gg', '[::1', '::1]', 'x::1]', '[127.0.0.1'])('%j is forbidden as invalid', (ip) => {
    expect(isForbiddenAddress(ip)).toEqual({ forbidden: true, range: 'invalid' });
  });

  it('reads legacy IPv4 notations the way a socket would', () => {
    expect(isForbiddenAddress('0x7f000001')).toEqual({ forbidden: true, range: 'loopback' });
    expect(isForbiddenAddress('2130706433')).toEqual({ forbidden: true, range: 'loopback' });
  });
});

describe('parseAllowlist and isAllowlisted', () => {
  // Parsed inside each test: a parse that throws must fail a test, not the file's collection.
  const sample = () => parseAllowlist(' 10.0.0.0/8, hooks.internal.example ,fd00::/8,192.168.5.5, *.corp.example, Upper.Example. ');

  it('sorts entries into networks, host names and wildcard suffixes', () => {
    const matcher = sample();
    expect(matcher.cidrs).toHaveLength(3);
    expect([...matcher.hostnames].sort()).toEqual(['hooks.internal.example', 'upper.example']);
    expect(matcher.suffixes).toEqual(['.corp.example']);
  });

  it('matches addresses in listed networks', () => {
    const matcher = sample();
    expect(isAllowlisted(undefined, '10.1.2.3', matcher)).toBe(true);
    expect(isAllowlisted(undefined, '11.1.2.3', matcher)).toBe(false);
    expect(isAllowlisted(undefined, '192.168.5.5', matcher)).toBe(true);
    expect(isAllowlisted(undefined, '192.168.5.6', matcher)).toBe(false);
    expect(isAllowlisted(undefined, 'fd00::1', matcher)).toBe(true);
    expect(isAllowlisted(undefined, 'fc00::1', matcher)).toBe(false);
    expect(isAllowlisted(undefined, '::ffff:10.9.9.9', matcher)).toBe(true);
    expect(isAllowlisted(undefined, '::1', matcher)).toBe(false);
    expect(isAllowlisted(undefined, 'not-an-ip', matcher)).toBe(false);
  });

  it('matches host names exactly (case and trailing dot aside) and wildcards on subdomains only', () => {
    const matcher = sample();
    expect(isAllowlisted('hooks.internal.example', '10.0.0.1', matcher)).toBe(true);
    expect(isAllowlisted('HOOKS.internal.example.', undefined, matcher)).toBe(true);
    expect(isAllowlisted('upper.example', undefined, matcher)).toBe(true);
    expect(isAllowlisted('evil.hooks.internal.example', undefined, matcher)).toBe(false);
    expect(isAllowlisted('hooks.internal.example.evil.com', undefined, matcher)).toBe(false);
    expect(isAllowlisted('a.corp.example', undefined, matcher)).toBe(true);
    expect(isAllowlisted('a.b.corp.example', undefined, matcher)).toBe(true);
    expect(isAllowlisted('corp.example', undefined, matcher)).toBe(false);
    expect(isAllowlisted('evilcorp.example', undefined, matcher)).toBe(false);
  });

  it('an empty list allows nothing', () => {
    const empty = parseAllowlist('');
    expect(isAllowlisted('localhost', '127.0.0.1', empty)).toBe(false);
    expect(parseAllowlist(' , ,').cidrs).toHaveLength(0);
  });

  it.each(['10.0.0.0/33', '10.0.0/8', 'not a host', 'http://x.example', '10', '*.', 'a..b'])('refuses the entry %j', (entry) => {
    expect(() => parseAllowlist(`10.0.0.0/8,${entry}`)).toThrow(/SSRF allowlist entry/);
  });
});

describe('isAlwaysForbiddenAddress (refused even with SLUICE_ALLOW_INSECURE_URLS)', () => {
  it.each([
    ['169.254.169.254', 'linkLocal'],
    ['fe80::1', 'linkLocal'],
    ['[fe80::a:b]', 'linkLocal'],
    ['::ffff:169.254.169.254', 'ipv4Mapped:linkLocal'],
    ['64:ff9b::a9fe:a9fe', 'rfc6052:linkLocal'],
    ['2002:a9fe:a9fe:1::1', '6to4:linkLocal'],
    ['fd00:ec2::254', 'cloudMetadata'], // AWS IMDS over IPv6
    ['[fd00:ec2:0:0:0:0:0:254]', 'cloudMetadata'],
    ['100.100.100.200', 'cloudMetadata'], // Alibaba
    ['::ffff:100.100.100.200', 'cloudMetadata'],
  ])('%s is refused (%s)', (ip, range) => {
    expect(isAlwaysForbiddenAddress(ip)).toEqual({ forbidden: true, range });
  });

  it.each(['127.0.0.1', '10.0.0.1', '192.168.1.1', '::1', 'fd00:ec2::253', 'fd00::254', '100.100.100.201', '8.8.8.8', '2606:4700:4700::1111'])(
    '%s is left to the insecure-mode decision',
    (ip) => {
      expect(isAlwaysForbiddenAddress(ip)).toEqual({ forbidden: false });
    },
  );

  it.each(['', 'example.com', '::gg'])('%j is refused as invalid', (ip) => {
    expect(isAlwaysForbiddenAddress(ip)).toEqual({ forbidden: true, range: 'invalid' });
  });
});

describe('parseAllowlist: entries', () => {
  it('names the entry it cannot read, trimmed, and says why', () => {
    expect(() => parseAllowlist('10.0.0.0/8, 10.0.0.0/33 ')).toThrow('SSRF allowlist entry "10.0.0.0/33" is not a valid CIDR');
    expect(() => parseAllowlist(' not a host ,10.0.0.0/8')).toThrow('SSRF allowlist entry "not a host" is neither a CIDR, an IP address nor a host name');
  });

  it('reads single addresses as /32 and /128 networks, and IPv6 CIDRs', () => {
    const matcher = parseAllowlist('192.0.2.7,[2001:db8::7],2001:db8:1::/48');
    expect(matcher.cidrs.map(([address, bits]) => [address.toString(), bits])).toEqual([
      ['192.0.2.7', 32],
      ['2001:db8::7', 128],
      ['2001:db8:1::', 48],
    ]);
    expect(isAllowlisted(undefined, '2001:db8::7', matcher)).toBe(true);
    expect(isAllowlisted(undefined, '[2001:db8::7]', matcher)).toBe(true);
    expect(isAllowlisted(undefined, '2001:db8::8', matcher)).toBe(false);
    expect(isAllowlisted(undefined, '2001:db8:1:ffff::1', matcher)).toBe(true);
    expect(isAllowlisted(undefined, '2001:db8:2::1', matcher)).toBe(false);
    expect(isAllowlisted(undefined, '192.0.2.7', matcher)).toBe(true);
    expect(isAllowlisted(undefined, '192.0.2.8', matcher)).toBe(false);
  });

  it('takes host names by DNS label rules: 1 to 63 characters, letters, digits, _ and inner -, at most 253 in all', () => {
    const label63 = 'a'.repeat(63);
    expect([...parseAllowlist(`${label63}.example`).hostnames]).toEqual([`${label63}.example`]);
    expect([...parseAllowlist('_hooks.example,a-b.example,x,web1,1st.example,a.b.c').hostnames]).toEqual(['_hooks.example', 'a-b.example', 'x', 'web1', '1st.example', 'a.b.c']);
    const long = `${'abcdefghi.'.repeat(25)}abc`; // 253 characters
    expect(long).toHaveLength(253);
    expect([...parseAllowlist(long).hostnames]).toEqual([long]);
    for (const bad of [`${'a'.repeat(64)}.example`, `${long}d`, '-a.example', 'a-.example', 'a.-b', 'a_b!.example', '1.2.3', '127.1']) {
      expect(() => parseAllowlist(bad), bad).toThrow(/neither a CIDR, an IP address nor a host name/);
    }
  });

  it('takes *. wildcards only in front of a valid host name', () => {
    expect(parseAllowlist('*.corp.example,*.x').suffixes).toEqual(['.corp.example', '.x']);
    expect(parseAllowlist('*.corp.example').hostnames.size).toBe(0);
    for (const bad of ['*.-corp.example', '*corp.example', '*..corp', 'a.*.corp']) {
      expect(() => parseAllowlist(bad), bad).toThrow(/neither a CIDR/);
    }
  });

  it('an allowlist of host names only exempts no address, and EMPTY_ALLOWLIST exempts nothing', () => {
    const names = parseAllowlist('hooks.example');
    expect(isAllowlisted(undefined, '10.0.0.1', names)).toBe(false);
    expect(isAllowlisted('', '10.0.0.1', names)).toBe(false);
    expect(isAllowlisted('other.example', '10.0.0.1', names)).toBe(false);
    expect(EMPTY_ALLOWLIST.cidrs).toHaveLength(0);
    expect(EMPTY_ALLOWLIST.hostnames.size).toBe(0);
    expect(EMPTY_ALLOWLIST.suffixes).toHaveLength(0);
    expect(isAllowlisted('hooks.example', '10.0.0.1', EMPTY_ALLOWLIST)).toBe(false);
  });

  it('matches IPv4 networks against IPv4-mapped IPv6 addresses only, never against other IPv6 forms', () => {
    const v4 = parseAllowlist('10.0.0.0/8');
    expect(isAllowlisted(undefined, '::ffff:10.1.1.1', v4)).toBe(true);
    expect(isAllowlisted(undefined, '::ffff:11.1.1.1', v4)).toBe(false);
    expect(isAllowlisted(undefined, '2002:a01:101::1', v4)).toBe(false); // 6to4 of 10.1.1.1
    expect(isAllowlisted(undefined, '::1', v4)).toBe(false);
    const v6 = parseAllowlist('::/0');
    expect(isAllowlisted(undefined, '10.1.1.1', v6)).toBe(false);
  });
});

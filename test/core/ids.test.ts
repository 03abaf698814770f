import { describe, expect, it, vi } from 'vitest';

/** randomBytes is replaced by a known sequence: call n fills its block with bytes n*7 + i. */
const calls = vi.hoisted(() => ({ sizes: [] as number[] }));
vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>();
  return {
    ...actual,
    randomBytes: (size: number) => {
      const n = calls.sizes.push(size);
      return Buffer.from(Array.from({ length: size }, (_, i) => (n * 7 + i) & 0xff));
    },
  };
});

// The suite shares modules between test files (vitest isolate: false): load ids.ts afresh, so it
// draws from the mocked randomBytes above and starts with an empty pool.
vi.resetModules();
const { idFloor, newId } = await import('../../src/core/ids.ts');

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
/** An independent reference: the 80 bits as one big number, 16 base32 digits, most significant first. */
function base32(bytes: number[]): string {
  let n = bytes.reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
  let out = '';
  for (let i = 0; i < 16; i++) {
    out = CROCKFORD[Number(n & 31n)] + out;
    n >>= 5n;
  }
  return out;
}
const block = (call: number, offset: number) => Array.from({ length: 10 }, (_, i) => (call * 7 + offset + i) & 0xff);

describe('newId and idFloor', () => {
  it('encode the time as 10 Crockford base32 digits (the ULID layout)', () => {
    expect(idFloor('evt', 1_469_918_176_385)).toBe('evt_01ARYZ6S41'); // the ULID spec's example
    expect(idFloor('dlv', 0)).toBe('dlv_0000000000');
    expect(idFloor('x', 2 ** 48 - 1)).toBe('x_7ZZZZZZZZZ');
    expect(idFloor('x', 31)).toBe('x_000000000Z');
    expect(idFloor('x', 32)).toBe('x_0000000010');
  });

  it('append 16 base32 digits of 80 random bits, drawn from randomBytes in blocks of 4096 bytes', () => {
    const first = newId('evt', 0);
    expect(calls.sizes).toEqual([4096]);
    expect(first).toBe(`evt_0000000000${base32(block(1, 0))}`);
    const second = newId('evt', 0);
    expect(second).toBe(`evt_0000000000${base32(block(1, 10))}`);
    // 409 ids use 4090 bytes of the block; the 410th needs a fresh one.
    const ids = [first, second];
    while (ids.length < 409) ids.push(newId('evt', 0));
    expect(ids[408]).toBe(`evt_0000000000${base32(block(1, 4080))}`);
    expect(calls.sizes).toEqual([4096]);
    expect(newId('evt', 0)).toBe(`evt_0000000000${base32(block(2, 0))}`);
    expect(calls.sizes).toEqual([4096, 4096]);
  });

  it('sort by creation time, and an id sorts at or after the floor of its time', () => {
    const t = 1_700_000_000_000;
    const a = newId('dlv', t);
    const b = newId('dlv', t + 1);
    expect(a < b).toBe(true);
    expect(a.startsWith(idFloor('dlv', t))).toBe(true);
    expect(a > idFloor('dlv', t)).toBe(true);
    expect(a < idFloor('dlv', t + 1)).toBe(true);
    expect(a).toMatch(/^dlv_[0-9A-HJKMNP-TV-Z]{26}$/);
  });

  it('take the current time by default', () => {
    const before = idFloor('evt', Date.now());
    const id = newId('evt');
    expect(id >= before).toBe(true);
    expect(id < idFloor('evt', Date.now() + 1)).toBe(true);
  });
});

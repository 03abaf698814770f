import { describe, expect, it } from 'vitest';
import { requestHash } from '../../src/core/request-hash.ts';

describe('requestHash', () => {
  const event = { event: 'call.ended', id: 'evt_1', timestamp: '2026-01-01T00:00:00.000Z', data: { b: 1, a: [1, { d: 2, c: 3 }] } };

  // Pinned: hashes stored by earlier versions must keep matching repeats after an upgrade.
  it('keeps the format of the hashes stored before', () => {
    expect(requestHash(event, { id: true, timestamp: false })).toBe('cba9be20c9a2fcd6d5d83eaebe0a92fa3c3f44e1f52c0f261971cde6239ebb7c');
    expect(requestHash({ event: 'call.ended', id: 'evt_generated', timestamp: '2026-01-01T00:00:00.000Z', data: { x: 'y' } }, { id: false, timestamp: true })).toBe('2e192b77c2c575fdf035c509b987147f7f7e679b7d81e1c79db9d2d91068abbf');
  });

  it('ignores key order but not values, array order or the fields the gateway filled in', () => {
    const posted = { id: true, timestamp: false };
    const base = requestHash(event, posted);
    expect(requestHash({ ...event, data: { a: [1, { c: 3, d: 2 }], b: 1 } }, posted)).toBe(base);
    expect(requestHash({ ...event, data: { b: 1, a: [{ d: 2, c: 3 }, 1] } }, posted)).not.toBe(base);
    expect(requestHash({ ...event, data: { b: 2, a: [1, { d: 2, c: 3 }] } }, posted)).not.toBe(base);
    // A timestamp the gateway filled in is not part of what was posted: a later repeat gets another.
    expect(requestHash({ ...event, timestamp: '2027-01-01T00:00:00.000Z' }, posted)).toBe(base);
    expect(requestHash(event, { id: true, timestamp: true })).not.toBe(base);
  });
});

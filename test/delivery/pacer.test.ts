import { describe, expect, it } from 'vitest';
import { Pacer } from '../../src/delivery/pacer.ts';

/** The worker's per-subscription `rate_limit` pacing, on explicit clocks (the worker floors the rate before it asks). */
describe('Pacer', () => {
  it('reserves start slots 1/rate apart per subscription, from now when the last slot is past', () => {
    const pacer = new Pacer();
    expect(pacer.reserve('sub_a', 'dlv_1', 4, 10_000)).toBe(0);
    expect(pacer.reserve('sub_a', 'dlv_2', 4, 10_000)).toBe(250);
    expect(pacer.reserve('sub_a', 'dlv_3', 4, 10_100)).toBe(400); // slot 10_500
    // Another subscription has its own slots.
    expect(pacer.reserve('sub_b', 'dlv_4', 4, 10_100)).toBe(0);
    // Long after the last slot: the next one is now, and the one after it 1/rate later.
    expect(pacer.reserve('sub_a', 'dlv_5', 4, 20_000)).toBe(0);
    expect(pacer.reserve('sub_a', 'dlv_6', 4, 20_000)).toBe(250);
    expect(pacer.isParked('dlv_6')).toBe(false);
  });

  it('paces nothing without a rate: no wait and no slot taken', () => {
    const pacer = new Pacer();
    expect(pacer.reserve('sub_a', 'dlv_1', null, 5_000)).toBe(0);
    expect(pacer.reserve('sub_a', 'dlv_2', null, 5_000)).toBe(0);
    expect(pacer.startGap('sub_a', null, 5_000)).toBe(0);
    expect(pacer.startGap('sub_a', null, 5_000)).toBe(0);
    // The unpaced calls left no slot and no start behind for a rate set later.
    expect(pacer.reserve('sub_a', 'dlv_3', 2, 5_000)).toBe(0);
    expect(pacer.startGap('sub_a', 2, 5_000)).toBe(0);
  });

  it('a parked delivery keeps its slot when it comes back, once, and takes no new one', () => {
    const pacer = new Pacer();
    expect(pacer.reserve('sub_a', 'dlv_1', 1, 0)).toBe(0);
    expect(pacer.reserve('sub_a', 'dlv_2', 1, 0)).toBe(1_000);
    expect(pacer.reserve('sub_a', 'dlv_3', 1, 0)).toBe(2_000);
    expect(pacer.reserve('sub_a', 'dlv_4', 1, 0)).toBe(3_000); // beyond the hold: the worker parks it
    pacer.park('dlv_4', 3_000, 0);
    expect(pacer.isParked('dlv_4')).toBe(true);
    // Back from the queue a little early: it waits for its own slot, not one behind the others.
    expect(pacer.reserve('sub_a', 'dlv_4', 1, 2_900)).toBe(100);
    expect(pacer.isParked('dlv_4')).toBe(false);
    // The next delivery still gets the slot after dlv_4's: the parked one took none.
    expect(pacer.reserve('sub_a', 'dlv_5', 1, 2_900)).toBe(1_100);
    // Its slot is used up: coming back again, it reserves a fresh one.
    expect(pacer.reserve('sub_a', 'dlv_4', 1, 2_900)).toBe(2_100);
  });

  it('a parked delivery back after its slot waits for nothing; back without a rate, it is unpaced and forgets the slot', () => {
    const pacer = new Pacer();
    pacer.park('dlv_late', 3_000, 0);
    expect(pacer.reserve('sub_a', 'dlv_late', 1, 3_500)).toBe(0);
    // That took no slot either: the next delivery starts now.
    expect(pacer.reserve('sub_a', 'dlv_next', 1, 3_500)).toBe(0);

    // The rate was removed while it was parked.
    pacer.park('dlv_unpaced', 9_000, 0);
    expect(pacer.reserve('sub_a', 'dlv_unpaced', null, 100)).toBe(0);
    expect(pacer.isParked('dlv_unpaced')).toBe(false);
    expect(pacer.reserve('sub_a', 'dlv_unpaced', 1, 100)).toBe(4_400); // a fresh slot after dlv_next's
  });

  it('keeps starts at least 1/rate apart, records only the starts it lets go, per subscription', () => {
    const pacer = new Pacer();
    expect(pacer.startGap('sub_a', 4, 1_000)).toBe(0);
    expect(pacer.startGap('sub_a', 4, 1_100)).toBe(150);
    // Asked again after a timer fired late, past the gap: it goes, and that start counts.
    expect(pacer.startGap('sub_a', 4, 1_300)).toBe(0);
    expect(pacer.startGap('sub_a', 4, 1_500)).toBe(50);
    // Exactly 1/rate after the last start goes, and is recorded as the last start.
    expect(pacer.startGap('sub_a', 4, 1_550)).toBe(0);
    expect(pacer.startGap('sub_a', 4, 1_700)).toBe(100);
    expect(pacer.startGap('sub_b', 4, 1_700)).toBe(0);
  });

  it('forgets parked slots older than a minute once more than 10,000 are parked, and only those', () => {
    const pacer = new Pacer();
    const now = 1_000_000;
    // 10,000 parked (no cleanup yet), some with slots long past: cancelled while parked.
    for (let i = 0; i < 9_997; i++) pacer.park(`dlv_old_${i}`, now - 60_001 - i, now - 120_000);
    pacer.park('dlv_edge', now - 60_000, now - 120_000);
    pacer.park('dlv_recent', now - 59_999, now - 120_000);
    pacer.park('dlv_future', now + 5_000, now);
    expect(pacer.isParked('dlv_old_0')).toBe(true);
    expect(pacer.isParked('dlv_old_9996')).toBe(true);

    // The 10,001st: the slots more than a minute before now are dropped.
    pacer.park('dlv_new', now + 6_000, now);
    expect(pacer.isParked('dlv_old_0')).toBe(false);
    expect(pacer.isParked('dlv_old_9996')).toBe(false);
    for (const id of ['dlv_edge', 'dlv_recent', 'dlv_future', 'dlv_new']) expect(pacer.isParked(id), id).toBe(true);
    expect(pacer.reserve('sub_a', 'dlv_future', 1, now)).toBe(5_000);
  });

  it('a few parked slots are kept however old', () => {
    const pacer = new Pacer();
    pacer.park('dlv_old', 0, 0);
    pacer.park('dlv_other', 500_000, 500_000);
    expect(pacer.isParked('dlv_old')).toBe(true);
    expect(pacer.reserve('sub_a', 'dlv_old', 1, 500_000)).toBe(0);
  });
});

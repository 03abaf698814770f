import { afterEach, expect, it, vi } from 'vitest';

// Changes the same things and puts each back: the guard must let it pass.
afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

it('sets a variable and a listener and restores them', () => {
  const listener = (): undefined => undefined;
  process.env.SLUICE_TIDY_FIXTURE = 'restored';
  process.on('unhandledRejection', listener);
  delete process.env.SLUICE_TIDY_FIXTURE;
  process.off('unhandledRejection', listener);
  expect(process.env.SLUICE_TIDY_FIXTURE).toBeUndefined();
});

it('spies on the clock and uses fake timers, undone after the test', () => {
  vi.spyOn(Date, 'now').mockReturnValue(0);
  vi.useFakeTimers({ toFake: ['setInterval'] });
  expect(Date.now()).toBe(0);
});

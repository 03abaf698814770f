import { expect, it, vi } from 'vitest';

// Leaves behind each kind of change the guard watches; every test here passes by itself.
it('sets a variable and a listener and keeps them', () => {
  process.env.SLUICE_LEAK_FIXTURE = 'left behind';
  process.on('unhandledRejection', () => undefined);
  expect(process.env.SLUICE_LEAK_FIXTURE).toBe('left behind');
});

it('spies on the clock and leaves fake timers installed', () => {
  vi.spyOn(Date, 'now').mockReturnValue(0);
  vi.useFakeTimers({ toFake: ['setInterval'] });
  expect(Date.now()).toBe(0);
});

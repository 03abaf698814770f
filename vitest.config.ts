import { defineConfig } from 'vitest/config';

/**
 * Generous time bounds: many tests drive real gateways (child processes, real HTTP, SQLite with
 * fsync, Chromium) and must pass on a loaded 2-core machine. A bound here only stops a hung test;
 * what a test asserts is a condition it waits for, never how fast the machine happened to be.
 */
export default defineConfig({
  test: {
    // Two test files at a time: most of the suite waits on child processes, sockets and fsync, so
    // on the 2-core machine two files run in 573 s where one at a time took 717 s.
    maxWorkers: 2,
    testTimeout: 20_000,
    hookTimeout: 30_000,
  },
});

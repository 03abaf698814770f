import { configDefaults, defineConfig } from 'vitest/config';

/**
 * Test files that leave something behind in their process: zapier-platform-core (loaded by the
 * Zapier app's contract test) hooks every HTTP request of the process to scrub secrets from it,
 * and its recursion overflows on the deeply nested bodies of the robustness tests. These run in a
 * process of their own; the rest share a worker's modules (see below).
 */
const OWN_PROCESS = ['test/connectors/zapier.contract.test.ts'];

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
    projects: [
      {
        extends: true,
        test: {
          name: 'shared',
          exclude: [...configDefaults.exclude, ...OWN_PROCESS],
          // Test files share a worker's modules instead of loading src/ again for each file (about
          // 1.5 s a file that imports the gateway): 406 s instead of 510 s here. Tests own their
          // state (each builds its gateway, storage and registries); a test that mocks a module
          // loads it afresh (see test/core/ids.test.ts).
          isolate: false,
          // ...so a file that leaves process-wide state changed fails, naming the change.
          setupFiles: ['test/support/process-state-guard.ts'],
        },
      },
      { extends: true, test: { name: 'own-process', include: OWN_PROCESS, isolate: true } },
    ],
  },
});

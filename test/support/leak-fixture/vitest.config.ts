import { defineConfig } from 'vitest/config';

// Runs the two fixture files the way the `shared` project runs the suite: one worker, modules
// shared, the process-state guard loaded before each file (test/process-state-guard.test.ts).
export default defineConfig({
  test: {
    root: import.meta.dirname,
    include: ['*.fixture.ts'],
    setupFiles: ['../process-state-guard.ts'],
    isolate: false,
    maxWorkers: 1,
    sequence: { shuffle: false },
  },
});

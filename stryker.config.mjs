// Mutation testing (`npm run test:mutation`; slow, not part of `npm test`). Mutates the code the
// delivery guarantees rest on and runs the in-process tests against each mutant (see
// vitest.mutation.config.ts). Narrow a run with SLUICE_MUTATE (comma-separated files or globs),
// e.g. SLUICE_MUTATE=src/core/backoff.ts npm run test:mutation.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// The sandbox (a copy of the project) lives outside the project, so `vitest run` never collects
// its copies of the tests. Tests read the shared event fixtures at <repo>/../shared: they are
// linked next to the sandbox.
const tmp = path.join(os.tmpdir(), `sluice-stryker-${createHash('sha256').update(process.cwd()).digest('hex').slice(0, 8)}`);
fs.mkdirSync(tmp, { recursive: true });
if (!fs.existsSync(path.join(tmp, 'shared'))) fs.symlinkSync(path.resolve('../shared'), path.join(tmp, 'shared'), 'dir');

const ALL = [
  'src/core/**/*.ts',
  'src/delivery/**/*.ts',
  'src/services/**/*.ts',
  'src/storage/**/*.ts',
  // Declarations only, or code that runs in an evaluator child process (mutants never switch there).
  '!src/storage/types.ts',
  '!src/services/evaluator-process.ts',
  '!src/services/evaluation-protocol.ts',
];

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  tempDirName: tmp,
  cleanTempDir: 'always',
  vitest: { configFile: 'vitest.mutation.config.ts', related: true },
  checkers: ['typescript'],
  tsconfigFile: 'tsconfig.json',
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  mutate: process.env.SLUICE_MUTATE ? process.env.SLUICE_MUTATE.split(',') : ALL,
  coverageAnalysis: 'perTest',
  concurrency: Number(process.env.SLUICE_MUTATION_CONCURRENCY ?? 2),
  timeoutMS: 30_000,
  timeoutFactor: 3,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  thresholds: { high: 90, low: 80, break: null },
  ignorePatterns: ['data', 'coverage', 'reports', 'test-artifacts', '.stryker-tmp', 'connectors/n8n/node_modules'],
};

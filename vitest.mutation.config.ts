import fs from 'node:fs';
import path from 'node:path';
import { defineConfig } from 'vitest/config';

/**
 * The tests Stryker runs against each mutant (`npm run test:mutation`, see stryker.config.mjs).
 * Stryker switches mutants inside the test process, so tests that run the gateway as a child
 * process or drive Chromium cannot kill a mutant (the child runs the code unmutated): they are
 * left out here, which keeps a mutation run affordable. `npm test` still runs every test.
 * SLUICE_MUTATION_TESTS (comma-separated globs) narrows the run further.
 */
const OUT_OF_PROCESS = /support\/gateway-process|support\/cli|support\/browser|bin\/sluice\.js|execFile/;

function outOfProcessTests(dir = 'test'): string[] {
  const found: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...outOfProcessTests(file));
    else if (file.endsWith('.test.ts') && OUT_OF_PROCESS.test(fs.readFileSync(file, 'utf8'))) found.push(file);
  }
  return found;
}

export default defineConfig({
  test: {
    include: (process.env.SLUICE_MUTATION_TESTS ?? 'test/**/*.test.ts').split(','),
    exclude: ['**/node_modules/**', ...outOfProcessTests()],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});

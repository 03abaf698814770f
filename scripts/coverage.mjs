#!/usr/bin/env node
// `npm run test:coverage [-- vitest args]`: the test suite with coverage, including the code that
// runs in the gateway and CLI child processes the tests spawn.
//
// 1. vitest with @vitest/coverage-v8 measures the test processes (coverage/in-process).
// 2. Children spawned through test/support (gateway-process.ts, cli.ts) get NODE_V8_COVERAGE from
//    SLUICE_CHILD_COVERAGE; Node writes their V8 coverage when they exit (a child killed with
//    SIGKILL, as crash tests do on purpose, writes none). c8 maps it back to the TypeScript
//    sources through tsx's inline source maps (coverage/child).
// 3. Both are merged into one report: coverage/index.html, coverage/coverage-summary.json, and a
//    summary on stdout.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import libCoverage from 'istanbul-lib-coverage';
import libReport from 'istanbul-lib-report';
import reports from 'istanbul-reports';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const out = path.join(root, 'coverage');
const raw = path.join(out, 'child-raw');
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(raw, { recursive: true });

const include = ['src/**/*.ts', 'connectors/**/*.ts', 'bin/**'];
const exclude = ['connectors/n8n/**', '**/*.d.ts', 'test/**'];
const run = (cmd, args, env = {}) => {
  const res = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  return res.status ?? 1;
};

const vitestStatus = run(process.execPath, [
  path.join(root, 'node_modules/vitest/vitest.mjs'), 'run',
  '--coverage.enabled=true', '--coverage.provider=v8', '--coverage.reporter=json', '--coverage.reportOnFailure=true', `--coverage.reportsDirectory=${path.join(out, 'in-process')}`,
  ...include.map((g) => `--coverage.include=${g}`), ...exclude.map((g) => `--coverage.exclude=${g}`),
  ...process.argv.slice(2),
], { SLUICE_CHILD_COVERAGE: raw });

const c8Status = run(process.execPath, [
  path.join(root, 'node_modules/c8/bin/c8.js'), 'report', `--temp-directory=${raw}`, `--reports-dir=${path.join(out, 'child')}`, '--reporter=json',
  '--exclude-after-remap', ...include.map((g) => `--include=${g}`), ...exclude.map((g) => `--exclude=${g}`),
]);

const map = libCoverage.createCoverageMap({});
for (const part of ['in-process', 'child']) {
  const file = path.join(out, part, 'coverage-final.json');
  if (fs.existsSync(file)) map.merge(JSON.parse(fs.readFileSync(file, 'utf8')));
  else console.error(`coverage: no ${part} coverage (${file})`);
}
const context = libReport.createContext({ dir: out, coverageMap: map, defaultSummarizer: 'nested' });
for (const reporter of ['html', 'json-summary', 'text-summary']) reports.create(reporter).execute(context);
const childFiles = fs.existsSync(path.join(out, 'child', 'coverage-final.json')) ? Object.keys(JSON.parse(fs.readFileSync(path.join(out, 'child', 'coverage-final.json'), 'utf8'))).length : 0;
console.log(`\ncoverage: ${map.files().length} files; ${childFiles} of them reached by child-process gateways/CLIs; report in coverage/index.html`);
process.exit(vitestStatus || c8Status);

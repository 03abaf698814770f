import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './support/gateway.ts';

/** `npm install` (npm 11 blocks unreviewed install scripts) must be quiet: every script is reviewed. */

const INSTALL_SCRIPTS = ['preinstall', 'install', 'postinstall'];

function packagesWithInstallScripts(dir: string, found = new Set<string>()): Set<string> {
  if (!fs.existsSync(dir)) return found;
  for (const entry of fs.readdirSync(dir)) {
    if (entry.startsWith('.')) continue;
    const full = path.join(dir, entry);
    if (entry.startsWith('@')) {
      packagesWithInstallScripts(full, found);
      continue;
    }
    const manifest = path.join(full, 'package.json');
    if (!fs.existsSync(manifest)) continue;
    const pkg = JSON.parse(fs.readFileSync(manifest, 'utf8')) as { name: string; scripts?: Record<string, string>; gypfile?: boolean };
    // npm runs `node-gyp rebuild` for a package with a binding.gyp even without an install script.
    if (INSTALL_SCRIPTS.some((s) => pkg.scripts?.[s]) || fs.existsSync(path.join(full, 'binding.gyp'))) found.add(pkg.name);
    packagesWithInstallScripts(path.join(full, 'node_modules'), found);
  }
  return found;
}

describe('package.json allowScripts', () => {
  it('covers every installed dependency that has an install script', () => {
    const { allowScripts } = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { allowScripts: Record<string, boolean> };
    const reviewed = new Set(Object.keys(allowScripts).map((key) => key.replace(/(.)@.*$/, '$1')));
    const installed = [...packagesWithInstallScripts(path.join(REPO_ROOT, 'node_modules'))];
    expect(installed).toContain('better-sqlite3');
    expect(installed.filter((name) => !reviewed.has(name))).toEqual([]);
    expect(allowScripts['better-sqlite3']).toBe(true);
  });
});

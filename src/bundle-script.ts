import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildSync, type BuildOptions } from 'esbuild';

const bundled = new Map<string, string>();

/**
 * TypeScript that runs outside the gateway's own module graph (an evaluator process, the SQLite
 * storage thread) as one self-contained CommonJS script, bundled once per process and written
 * to the temp dir under a name that is the hash of its code: loading it through tsx instead
 * would cost a loader and a module graph apiece (about 25 MB and a slower start).
 * `external` maps packages to the absolute file they are required from (native addons cannot
 * be bundled, and the script does not live next to node_modules).
 */
export function bundleScript(name: string, source: Pick<BuildOptions, 'entryPoints' | 'stdin'>, external: Record<string, string> = {}): string {
  const key = JSON.stringify([name, source, external]);
  const known = bundled.get(key);
  if (known && fs.existsSync(known)) return known;
  let code = buildSync({
    ...source,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    write: false,
    logLevel: 'silent',
    external: Object.keys(external),
  }).outputFiles[0].text;
  for (const [name, file] of Object.entries(external)) {
    const call = `require(${JSON.stringify(name)})`;
    if (!code.includes(call)) throw new Error(`bundle ${name}: no ${call} to point at ${file}`);
    code = code.replaceAll(call, `require(${JSON.stringify(file)})`);
  }
  const file = path.join(os.tmpdir(), `${name}-${createHash('sha256').update(code).digest('hex').slice(0, 16)}.cjs`);
  if (!fs.existsSync(file)) {
    // Written aside and renamed: gateways starting together never run a half-written file.
    const partial = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(partial, code, { mode: 0o644 });
    fs.renameSync(partial, file);
  }
  bundled.set(key, file);
  return file;
}

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
  // A build takes about a second for the larger scripts: an earlier process's bundle is used
  // again when none of the files it was built from changed (same size and modification time).
  const manifestFile = path.join(os.tmpdir(), `${name}-${createHash('sha256').update(key).digest('hex').slice(0, 16)}.inputs.json`);
  const reused = unchangedBundle(manifestFile);
  if (reused) {
    bundled.set(key, reused);
    return reused;
  }
  const result = buildSync({
    ...source,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    write: false,
    logLevel: 'silent',
    // No comments or indentation. V8 holds a script's source for the thread's life, and one
    // character beyond Latin-1 anywhere in it (undici's comments say "request’s") makes the whole
    // source a two-byte string: 5.2 MB for the delivery thread's 2.6 MB script, 2.0 MB once its
    // 1.8 MB are plain one-byte text. Names are kept: errors and stack traces still name them.
    minifyWhitespace: true,
    external: Object.keys(external),
    metafile: true,
  });
  let code = result.outputFiles[0].text;
  for (const [name, file] of Object.entries(external)) {
    const call = `require(${JSON.stringify(name)})`;
    if (!code.includes(call)) throw new Error(`bundle ${name}: no ${call} to point at ${file}`);
    code = code.replaceAll(call, `require(${JSON.stringify(file)})`);
  }
  const file = path.join(os.tmpdir(), `${name}-${createHash('sha256').update(code).digest('hex').slice(0, 16)}.cjs`);
  if (!fs.existsSync(file)) writeAside(file, code);
  writeAside(manifestFile, JSON.stringify({ output: file, inputs: Object.keys(result.metafile.inputs).filter((input) => !input.startsWith('<')).map((input) => fingerprint(path.resolve(input))) } satisfies Manifest));
  bundled.set(key, file);
  return file;
}

interface Manifest {
  output: string;
  inputs: [file: string, size: number, mtimeMs: number][];
}

function fingerprint(file: string): [string, number, number] {
  const stat = fs.statSync(file);
  return [file, stat.size, stat.mtimeMs];
}

/** The bundle a manifest names, if it exists and every file it was built from is as it was. */
function unchangedBundle(manifestFile: string): string | undefined {
  try {
    const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as Manifest;
    if (!manifest.inputs.length || !fs.existsSync(manifest.output)) return undefined;
    for (const [file, size, mtimeMs] of manifest.inputs) {
      const [, nowSize, nowMtime] = fingerprint(file);
      if (nowSize !== size || nowMtime !== mtimeMs) return undefined;
    }
    return manifest.output;
  } catch {
    return undefined; // none yet, unreadable, or an input is gone: build
  }
}

/** Written aside and renamed: gateways starting together never read a half-written file. */
function writeAside(file: string, contents: string): void {
  const partial = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(partial, contents, { mode: 0o644 });
  fs.renameSync(partial, file);
}

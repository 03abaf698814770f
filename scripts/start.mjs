/**
 * What `npm start` runs: the gateway (src/main.ts) bundled by esbuild into one ES module, then
 * imported. Running it through tsx instead costs a module-loader thread with a V8 heap of its
 * own (measured: 44 MB of RSS for the life of the process) and a slower start.
 *
 * - Packages stay external: Node loads them from node_modules, so the bundle is written under
 *   node_modules/.cache/sluice, where that lookup works, named by the hash of its code.
 * - Each module's `import.meta.url` becomes its own source file's URL (esbuild would give every
 *   module the bundle's), so what the code finds beside itself (the dashboard, the storage
 *   thread's entry, package.json) is found as before.
 * - `--build` writes the bundle and exits (the Dockerfile runs it where node_modules is writable).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// esbuild's synchronous API (the gateway bundles its storage thread and evaluator scripts at
// start with it) would otherwise run a service process from a worker thread and keep it for the
// life of the gateway (about 30 MB); with this, each synchronous build is a short-lived process.
process.env.ESBUILD_WORKER_THREADS = '0';
const { build, stop } = await import('esbuild');

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Gives each TypeScript module that reads `import.meta.url` the URL of its own source file. */
const sourceUrls = {
  name: 'source-import-meta-url',
  setup(pluginBuild) {
    pluginBuild.onLoad({ filter: /\.ts$/ }, async (args) => {
      const source = await fs.promises.readFile(args.path, 'utf8');
      if (!source.includes('import.meta.url')) return undefined;
      return { contents: source.replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href)), loader: 'ts' };
    });
  },
};

async function bundleGateway() {
  const result = await build({
    entryPoints: [path.join(root, 'src', 'main.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    // No keepNames: it wraps every closure the code creates in a naming call, on the hot path.
    // Class names still matter (errors name themselves after their class): see the check below.
    // Linked, not inline: Node reads a map only under --enable-source-maps, and then keeps it
    // in memory (about 25 MB); without the flag, stack traces name bundle lines.
    sourcemap: 'linked',
    // At the depth of the real one (cache/sluice/<hash>/), so the map's relative sources resolve.
    outfile: path.join(root, 'node_modules', '.cache', 'sluice', 'bundle', 'gateway.mjs'),
    write: false,
    logLevel: 'silent',
    plugins: [sourceUrls],
  });
  const output = (ext) => result.outputFiles.find((f) => f.path.endsWith(ext)).text;
  const code = output('.mjs');
  // esbuild renames a top-level name taken twice (`Foo2`); for a class that would change its name.
  const renamed = /\b([A-Z]\w*\d) = class\b/.exec(code);
  if (renamed) throw new Error(`sluice start: the bundle renamed class ${renamed[1]} (two modules declare the same class name); rename one of them`);
  const dir = path.join(root, 'node_modules', '.cache', 'sluice', createHash('sha256').update(code).digest('hex').slice(0, 16));
  const file = path.join(dir, 'gateway.mjs');
  if (!fs.existsSync(file)) {
    try {
      fs.mkdirSync(dir, { recursive: true });
    } catch (err) {
      throw new Error(`sluice start: cannot write the gateway bundle to ${dir} (${err.code}); run "node scripts/start.mjs --build" as the user who installed node_modules`);
    }
    // Each written aside and renamed, the map first: gateways starting together never import a half-written file.
    for (const [name, text] of [['gateway.mjs.map', output('.map')], ['gateway.mjs', code]]) {
      const partial = path.join(dir, `${name}.${process.pid}.tmp`);
      fs.writeFileSync(partial, text, { mode: 0o644 });
      fs.renameSync(partial, path.join(dir, name));
    }
  }
  return file;
}

const file = await bundleGateway();
// esbuild's service process would otherwise live as long as the gateway.
await stop();
if (!process.argv.includes('--build')) {
  await import(pathToFileURL(file).href);
}

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, tempDir } from './support/gateway.ts';

/** Bundles `entry` in a fresh process (the in-memory cache of one process is not what is tested) and prints the script's path. */
function bundleInNewProcess(entry: string, name: string): string {
  const code = `import { bundleScript } from ${JSON.stringify(path.join(REPO_ROOT, 'src/bundle-script.ts'))}; process.stdout.write(bundleScript(${JSON.stringify(name)}, { entryPoints: [${JSON.stringify(entry)}] }));`;
  return execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: REPO_ROOT, encoding: 'utf8' });
}

describe('bundleScript', () => {
  it('reuses an earlier process\'s bundle while its source files are unchanged (size and modification time), and rebuilds when one changes', () => {
    const dir = tempDir('sluice-bundle-');
    const helper = path.join(dir, 'helper.ts');
    const entry = path.join(dir, 'entry.ts');
    fs.writeFileSync(helper, "export const word: string = 'first';\n");
    fs.writeFileSync(entry, "import { word } from './helper.ts';\nconsole.log(word);\n");
    // Whole seconds, which utimes can set back exactly.
    const mtime = Math.floor(Date.now() / 1000) - 60;
    fs.utimesSync(helper, mtime, mtime);
    const name = `sluice-test-bundle-${process.pid}-${Date.now()}`;
    const first = bundleInNewProcess(entry, name);
    expect(fs.readFileSync(first, 'utf8')).toContain('first');

    // Same size and modification time, other text: taken for unchanged, so the first bundle is used
    // as it is (no build). This is what makes a start without changes skip esbuild.
    fs.writeFileSync(helper, "export const word: string = 'other';\n");
    fs.utimesSync(helper, mtime, mtime);
    expect(bundleInNewProcess(entry, name)).toBe(first);

    // A real edit (another size) is built anew.
    fs.writeFileSync(helper, "export const word: string = 'second one';\n");
    const second = bundleInNewProcess(entry, name);
    expect(second).not.toBe(first);
    expect(fs.readFileSync(second, 'utf8')).toContain('second one');
  });

  it('drops comments, so a comment beyond Latin-1 does not make V8 hold the whole script as two-byte text', () => {
    const dir = tempDir('sluice-bundle-');
    const entry = path.join(dir, 'entry.ts');
    // As in undici's sources, a comment in a class body (esbuild keeps those): "response’s", U+2019.
    fs.writeFileSync(entry, "class Kind {\n  // Returns response\u2019s kind\n  get kind(): string {\n    return 'caf\u00e9 \u2192 ok';\n  }\n}\nconsole.log(new Kind().kind, Kind.name);\n");
    const script = fs.readFileSync(bundleInNewProcess(entry, `sluice-test-bundle-${process.pid}-${Date.now()}`), 'utf8');
    expect([...script].filter((c) => c.charCodeAt(0) > 0xff)).toEqual([]);
    // Strings keep their text (escaped: esbuild writes ASCII), and classes their names.
    expect(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })).toBe('caf\u00e9 \u2192 ok Kind\n');
  });
});

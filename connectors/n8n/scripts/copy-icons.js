// tsc only emits JavaScript: copy the icons (icons/, and any beside a node or credential) into dist.
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
for (const dir of ['icons', 'nodes', 'credentials']) {
  const from = path.join(root, dir);
  if (!fs.existsSync(from)) continue;
  fs.cpSync(from, path.join(root, 'dist', dir), {
    recursive: true,
    filter: (source) => fs.statSync(source).isDirectory() || /\.(svg|png)$/.test(source),
  });
}

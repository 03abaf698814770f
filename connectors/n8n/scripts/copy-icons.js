// tsc only emits JavaScript: copy the node and credential icons beside their compiled files.
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
for (const dir of ['nodes', 'credentials']) {
  const from = path.join(root, dir);
  if (!fs.existsSync(from)) continue;
  fs.cpSync(from, path.join(root, 'dist', dir), {
    recursive: true,
    filter: (source) => fs.statSync(source).isDirectory() || /\.(svg|png)$/.test(source),
  });
}

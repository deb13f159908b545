// `npm run build -w packages/dashboard`: type-checks and bundles the dashboard into dist/, unless
// dist/ is already newer than everything it is built from. `npm test` builds before it runs and
// `npm install` built already: the dashboard's part (≈14 s on 2 cores) was done twice on every
// fresh clone and CI run. `--force` (or deleting dist/) builds anyway.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const stamp = join(root, 'dist', '.built-from-sources');
/** What the bundle depends on: its sources, config, and the installed packages' lockfile. */
const inputs = [
  'src',
  'public',
  'index.html',
  'vite.config.ts',
  'tsconfig.json',
  'package.json',
  '../../tsconfig.base.json',
  '../../package-lock.json',
].map((p) => join(root, p));

function newestMtimeMs(path) {
  let st;
  try {
    st = statSync(path);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const entry of readdirSync(path))
    newest = Math.max(newest, newestMtimeMs(join(path, entry)));
  return newest;
}

function stampMtimeMs() {
  try {
    return statSync(stamp).mtimeMs;
  } catch {
    return -1;
  }
}

const force = process.argv.includes('--force');
const sourcesMs = Math.max(...inputs.map(newestMtimeMs));
if (!force && stampMtimeMs() > sourcesMs) {
  console.log('dashboard: dist/ is newer than its sources, not rebuilt (--force to rebuild)');
  process.exit(0);
}
for (const [command, args] of [
  ['tsc', ['-p', 'tsconfig.json']],
  ['vite', ['build']],
]) {
  const run = spawnSync(command, args, { cwd: root, stdio: 'inherit', shell: false });
  if (run.status !== 0) process.exit(run.status ?? 1);
}
writeFileSync(stamp, `${new Date().toISOString()}\n`);

#!/usr/bin/env node
// `npm run build` / `npm start`: builds only what changed since the last build.
// - TypeScript (src, migrations, bench) with tsc's incremental build info, and not at all
//   when no source, config or lock file is newer than that build info. The build info is
//   this script's own (dist/.tsbuildinfo, not in tsconfig.json): a `tsc --noEmit` elsewhere
//   must not mark files as built that were only checked;
// - the dashboard bundles (live page and usage page) with esbuild, only when their sources are newer;
// - GraphiQL's bundle, which skips itself when nothing changed.
// Newer means a newer mtime of a file or of a directory (adding or removing a file counts).
// `--force` rebuilds both.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync, utimesSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const at = (p) => join(root, p);
const force = process.argv.includes('--force');

/** The newest mtime (ms) under these paths, directories included; node_modules and dist skipped. */
function newest(paths) {
  let max = 0;
  const visit = (p) => {
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st) return;
    max = Math.max(max, st.mtimeMs);
    if (st.isDirectory()) for (const e of readdirSync(p)) if (e !== 'node_modules' && e !== 'dist') visit(join(p, e));
  };
  for (const p of paths) visit(at(p));
  return max;
}
const mtime = (p) => statSync(at(p), { throwIfNoEntry: false })?.mtimeMs ?? 0;

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

const BUILD_INFO = 'dist/.tsbuildinfo';
const tsInputs = ['src', 'migrations', 'bench', 'tsconfig.json', 'package-lock.json'];
if (force || !existsSync(at('dist/src/main.js')) || newest(tsInputs) > mtime(BUILD_INFO)) {
  run(process.execPath, [
    at('node_modules/typescript/bin/tsc'),
    '-p',
    'tsconfig.json',
    '--incremental',
    '--tsBuildInfoFile',
    at(BUILD_INFO),
  ]);
  // tsc leaves its build info alone when nothing it tracks changed (a touched file): mark this build as the last.
  const now = new Date();
  utimesSync(at(BUILD_INFO), now, now);
}

const dashboardInputs = [
  'dashboard/src',
  'dashboard/generated',
  'dashboard/index.html',
  'dashboard/usage.html',
  'dashboard/common.css',
  'package-lock.json',
];
const dashboardOutputs = [
  'dist/dashboard/app.js',
  'dist/dashboard/usage.js',
  'dist/dashboard/index.html',
  'dist/dashboard/usage.html',
  'dist/dashboard/common.css',
];
if (force || newest(dashboardInputs) > Math.min(...dashboardOutputs.map(mtime))) {
  const { build } = await import('esbuild');
  await build({
    entryPoints: { app: at('dashboard/src/main.ts'), usage: at('dashboard/src/usage.ts') },
    bundle: true,
    minify: true,
    format: 'esm',
    target: 'es2022',
    logLevel: 'warning',
    outdir: at('dist/dashboard'),
  });
  mkdirSync(at('dist/dashboard'), { recursive: true });
  for (const page of ['index.html', 'usage.html', 'common.css'])
    copyFileSync(at(`dashboard/${page}`), at(`dist/dashboard/${page}`));
}

// GraphiQL's bundle decides for itself whether anything changed (graphiql/build.mjs).
run(process.execPath, [at('graphiql/build.mjs'), ...(force ? ['--force'] : [])]);

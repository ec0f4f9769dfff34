// Bundles GraphiQL (React, Monaco and its workers, the CSS and fonts) into dist/graphiql/
// with esbuild, so /graphiql needs nothing from a CDN. Run by `npm run build:graphiql`.
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'graphiql');

// The bundle takes seconds: skip it when it is newer than its sources and the lock file (--force rebuilds).
const sources = [
  join(root, 'graphiql', 'index.html'),
  join(root, 'graphiql', 'build.mjs'),
  join(root, 'package-lock.json'),
  ...readdirSync(join(root, 'graphiql', 'src')).map((f) => join(root, 'graphiql', 'src', f)),
];
const built = join(out, 'main.js');
if (!process.argv.includes('--force') && existsSync(built) && existsSync(join(out, 'index.html'))) {
  const at = statSync(built).mtimeMs;
  if (sources.every((f) => statSync(f).mtimeMs < at)) process.exit(0);
}
mkdirSync(out, { recursive: true });

const common = {
  bundle: true,
  minify: true,
  target: 'es2022',
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': '"production"' },
  legalComments: 'none',
};

await Promise.all([
  build({
    ...common,
    entryPoints: { main: join(root, 'graphiql', 'src', 'main.js') },
    format: 'esm',
    outdir: out,
    // Monaco's codicon font and any images the CSS refers to, as files beside it.
    loader: { '.ttf': 'file', '.woff': 'file', '.woff2': 'file', '.svg': 'file', '.png': 'file' },
    assetNames: '[name]-[hash]',
  }),
  // Web workers: classic scripts, one per language service Monaco starts.
  build({
    ...common,
    entryPoints: {
      'editor.worker': 'monaco-editor/esm/vs/editor/editor.worker.js',
      'json.worker': 'monaco-editor/esm/vs/language/json/json.worker.js',
      'graphql.worker': 'monaco-graphql/esm/graphql.worker.js',
    },
    format: 'iife',
    outdir: out,
  }),
]);
copyFileSync(join(root, 'graphiql', 'index.html'), join(out, 'index.html'));

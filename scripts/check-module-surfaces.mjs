#!/usr/bin/env node
// The dependency rule between modules (docs/ARCHITECTURE.md): a file of src/modules/<a>/ imports
// another module <b> only through its surface: src/modules/<b>/index.ts, module.ts or a *.entity.ts.
// Prints every import that reaches past a surface and exits 1 when there is one.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';

const root = join(dirname(new URL(import.meta.url).pathname), '..');
const modulesDir = join(root, 'src/modules');
const surface = (file) => file === 'index.js' || file === 'module.js' || file.endsWith('.entity.js');

function* files(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* files(p);
    else if (e.name.endsWith('.ts')) yield p;
  }
}

const problems = [];
for (const file of files(modulesDir)) {
  const own = relative(modulesDir, file).split('/')[0];
  const text = readFileSync(file, 'utf8');
  for (const [, spec] of text.matchAll(/from '(\.{1,2}\/[^']+)'/g)) {
    const target = relative(modulesDir, normalize(join(dirname(file), spec))).split('/');
    if (target[0].startsWith('..') || target.length < 2 || target[0] === own) continue;
    if (target.length === 2 && surface(target[1])) continue;
    problems.push(`${relative(root, file)}: imports ${spec} (module ${target[0]}: use its index.ts)`);
  }
}
if (problems.length) {
  console.error(`${problems.length} import(s) reach past another module's surface:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log('modules reach each other only through their surfaces');

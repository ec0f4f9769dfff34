import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { MigrationObject } from '@mikro-orm/core';
import { describe, expect, it } from 'vitest';

import { migrationsList } from '../../migrations/index.js';

const dir = join(import.meta.dirname, '..', '..', 'migrations');
const files = () =>
  readdirSync(dir)
    .filter((f) => /^Migration.*\.ts$/.test(f))
    .map((f) => f.replace(/\.ts$/, ''));

/**
 * What is wrong with a migrations list against the migration files: MikroORM runs the list
 * in the order given (on an empty database, that is the order of every migration), so it
 * must be every file, once, in timestamp order — and a name must be a 14-digit timestamp,
 * so that sorting names sorts times.
 */
function listProblems(list: readonly MigrationObject[], fileNames: readonly string[]): string[] {
  const problems: string[] = [];
  const names = list.map((m) => m.name);
  for (const f of fileNames) if (!names.includes(f)) problems.push(`${f}.ts is not in migrations/index.ts`);
  for (const n of names) if (!fileNames.includes(n)) problems.push(`${n} is listed but has no file`);
  for (const n of names) if (!/^Migration\d{14}_\w+$/.test(n)) problems.push(`${n} is not Migration<14 digits>_<name>`);
  names.forEach((n, i) => {
    if (i > 0 && names[i - 1]! >= n) problems.push(`${n} is listed after ${names[i - 1]}`);
  });
  for (const m of list) if (m.class.name !== m.name) problems.push(`${m.name} is listed with class ${m.class.name}`);
  return problems;
}

describe('migrations/index.ts', () => {
  it('lists every migration file once, in timestamp order, each with its own class', () => {
    expect(listProblems(migrationsList, files())).toEqual([]);
  });

  it('would be refused unsorted, short of a file, or with a file named twice', () => {
    const [first, second, ...rest] = migrationsList;
    expect(listProblems([second!, first!, ...rest], files())).toEqual([
      `${first!.name} is listed after ${second!.name}`,
    ]);
    expect(listProblems(migrationsList.slice(0, -1), files())).toEqual([
      `${migrationsList.at(-1)!.name}.ts is not in migrations/index.ts`,
    ]);
    expect(listProblems([...migrationsList, migrationsList.at(-1)!], files())).toContain(
      `${migrationsList.at(-1)!.name} is listed after ${migrationsList.at(-1)!.name}`,
    );
  });
});

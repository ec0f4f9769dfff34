import 'reflect-metadata';

import { readdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

import { loadConfig } from '../config.js';
import { openDatabase } from '../db/database.js';
import { connectOrm, migrate } from '../db/orm.js';
import { prepareDatabase } from '../db/prepare.js';
import { createLogger } from '../shared/logger.js';

/**
 * `npm run migrate`: prepares DATABASE_URL (or the embedded database) exactly as `npm start`
 * does before serving (src/db/prepare.ts): pending migrations, reference data, and the
 * application's own database role (DATABASE_APP_ROLE) created and granted.
 * `npm run migration:create [name]`: applies them, then writes a migration for whatever
 * the entities declare that the database lacks, and re-lists migrations/index.ts.
 */
async function main() {
  const [command = 'up', name] = process.argv.slice(2);
  const config = loadConfig();
  const logger = createLogger(config.LOG_LEVEL === 'info' ? 'warn' : config.LOG_LEVEL);
  const database = await openDatabase(config, logger);
  try {
    if (command !== 'create') {
      // Exactly what `npm start` does before serving: migrations, reference data, the application's role.
      const { applied, appUrl } = await prepareDatabase(database.url, config, logger);
      console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
      const role = decodeURIComponent(new URL(appUrl).username);
      console.log(
        appUrl === database.url ? 'application role: off (DATABASE_APP_ROLE=off)' : `application role: ${role}`,
      );
      return;
    }
    const orm = await connectOrm(database.url, 2, logger);
    try {
      const applied = await migrate(orm);
      console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
      const result = await orm.getMigrator().createMigration('migrations', false, false, name?.replace(/[^\w]/g, '_'));
      if (!result.fileName) console.log('no changes: no migration written');
      else {
        console.log(`written: migrations/${result.fileName}`);
        writeIndex();
      }
    } finally {
      await orm.close();
    }
  } finally {
    await database.stop();
  }
}

function writeIndex() {
  const dir = resolve('migrations');
  const names = readdirSync(dir)
    .filter((f) => /^Migration\d+.*\.ts$/.test(f))
    .map((f) => f.replace(/\.ts$/, ''))
    .sort();
  const lines = [
    "import type { MigrationObject } from '@mikro-orm/core';",
    ...names.map((n) => `import { ${n.replace(/[^\w]/g, '_')} } from './${n}.js';`),
    '',
    '// The migrations in timestamp order, the order MikroORM runs them on an empty database (it runs this list as',
    '// given, it does not sort it). `npm run migration:create` writes a new file and rewrites this list;',
    '// test/unit/migrations-list.test.ts fails when it is unsorted or misses a file.',
    'export const migrationsList: MigrationObject[] = [',
    ...names.map((n) => `  { name: '${n}', class: ${n.replace(/[^\w]/g, '_')} },`),
    '];',
    '',
  ];
  writeFileSync(resolve(dir, 'index.ts'), lines.join('\n'));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

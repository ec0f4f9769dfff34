import { Migrator } from '@mikro-orm/migrations';
import { defineConfig, MikroORM, type Options } from '@mikro-orm/postgresql';
import pg from 'pg';

import { migrationsList } from '../../migrations/index.js';
import type { Logger } from '../shared/logger.js';
import { entities } from './entities.js';

export type { MikroORM };

/** MikroORM's settings; shared by the server, the CLI commands and the tests. */
export function ormConfig(url: string, poolSize: number, logger?: Logger): Options {
  return defineConfig({
    clientUrl: url,
    entities,
    extensions: [Migrator],
    // Forks only: a request must never touch a shared identity map.
    allowGlobalContext: false,
    forceUtcTimezone: true,
    pool: { min: 0, max: poolSize },
    discovery: { disableDynamicFileAccess: true },
    // vitest loads TypeScript sources; without this MikroORM's own import() sees `.ts` and fails.
    dynamicImportProvider: (id: string) => import(id),
    migrations: {
      migrationsList,
      path: 'migrations',
      pathTs: 'migrations',
      emit: 'ts',
      snapshot: false,
      transactional: true,
      allOrNothing: true,
      tableName: 'mikro_orm_migrations',
    },
    // Monthly partitions (prompt_logs_2026_11, …: created and dropped by jobs) and the rate limits' counters
    // (rate-limiter-flexible's table, no entity) are not the schema diff's.
    schemaGenerator: { skipTables: [/_\d{4}_\d{2}$/, 'auth_rate_limits'] },
    debug: false,
    logger: (message) => logger?.debug({ module: 'orm' }, message),
  });
}

export async function connectOrm(url: string, poolSize: number, logger?: Logger): Promise<MikroORM> {
  return MikroORM.init(ormConfig(url, poolSize, logger));
}

/**
 * Applies pending migrations; returns their names. Instances starting together on one
 * database take turns (a session advisory lock on a connection of its own): MikroORM's
 * migrator does not lock, and two concurrent runs collide on `create type`.
 */
export async function migrate(orm: MikroORM): Promise<string[]> {
  const lock = new pg.Client({ connectionString: orm.config.get('clientUrl') });
  await lock.connect();
  try {
    await lock.query(`SELECT pg_advisory_lock(hashtext('steward:migrations'))`);
    const applied = await orm.getMigrator().up();
    return applied.map((m) => m.name);
  } finally {
    await lock.end(); // ending the session releases the lock
  }
}

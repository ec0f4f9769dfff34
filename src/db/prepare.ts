import type { EntityManager } from '@mikro-orm/postgresql';

import type { Config } from '../config.js';
import type { Logger } from '../shared/logger.js';
import { ensureAppRole } from './app-role.js';
import { connectOrm, migrate } from './orm.js';
import { seedReferenceData } from './seed.js';

/**
 * What the schema's owner does before the application may run, in one place for
 * `npm start` (src/server/app.ts) and `npm run migrate` (src/cli/migrate.ts), so both
 * leave the same database behind: pending migrations applied, reference data seeded,
 * and the application's own database role arranged and granted (src/db/app-role.ts).
 *
 * Answers the migrations applied and the URL the application connects with.
 */
export async function prepareDatabase(
  ownerUrl: string,
  config: Pick<Config, 'DATABASE_APP_ROLE' | 'TOKEN_SIGNING_KEY'>,
  logger: Logger,
): Promise<{ applied: string[]; appUrl: string }> {
  const owner = await connectOrm(ownerUrl, 2, logger);
  let applied: string[];
  try {
    applied = await migrate(owner);
    if (applied.length) logger.info({ module: 'db', applied }, 'migrations applied');
    await seedReferenceData(owner.em.fork() as EntityManager);
  } finally {
    await owner.close();
  }
  const appUrl = await ensureAppRole(ownerUrl, {
    setting: config.DATABASE_APP_ROLE,
    secret: config.TOKEN_SIGNING_KEY,
    logger,
  });
  return { applied, appUrl };
}

import type { MigrationObject } from '@mikro-orm/core';
import { Migration20261123050656_initial } from './Migration20261123050656_initial.js';

// The migrations, in order. `npm run migration:create` writes a new file and rewrites this list.
export const migrationsList: MigrationObject[] = [
  { name: 'Migration20261123050656_initial', class: Migration20261123050656_initial },
];

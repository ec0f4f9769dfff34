import 'reflect-metadata';

import { writeFileSync } from 'node:fs';
import { lexicographicSortSchema, printSchema } from 'graphql';

import { buildStewardSchema } from '../schema.js';

/** `npm run schema`: writes schema.graphql from the code (CI fails when the committed one differs). */
const schema = await buildStewardSchema();
writeFileSync('schema.graphql', printSchema(lexicographicSortSchema(schema)) + '\n');
console.log('schema.graphql written');

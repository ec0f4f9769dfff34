import type { CodegenConfig } from '@graphql-codegen/cli';

const typed = {
  plugins: ['typescript-operations', 'typed-document-node'],
  config: {
    useTypeImports: true,
    enumsAsTypes: true,
    skipTypename: true,
    scalars: { DateTime: 'string', JSON: 'unknown', JSONObject: 'Record<string, unknown>', Decimal: 'string' },
  },
};

/**
 * `npm run codegen`: typed documents for the operations the tests (and clients) send,
 * and for the live dashboard's own (bundled into dist/dashboard by `build:dashboard`).
 */
const config: CodegenConfig = {
  schema: 'schema.graphql',
  generates: {
    'test/generated/graphql.ts': { documents: ['test/operations/**/*.graphql'], ...typed },
    // Documents as strings: the page sends them as they are and bundles no GraphQL parser/printer.
    'dashboard/generated/graphql.ts': {
      documents: ['dashboard/operations/**/*.graphql'],
      ...typed,
      config: { ...typed.config, documentMode: 'string' },
    },
  },
  hooks: { afterAllFileWrite: [] },
};

export default config;

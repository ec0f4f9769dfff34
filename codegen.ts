import type { CodegenConfig } from '@graphql-codegen/cli';

/** `npm run codegen`: typed documents for the operations the tests (and clients) send. */
const config: CodegenConfig = {
  schema: 'schema.graphql',
  documents: ['test/operations/**/*.graphql'],
  generates: {
    'test/generated/graphql.ts': {
      plugins: ['typescript-operations', 'typed-document-node'],
      config: {
        useTypeImports: true,
        enumsAsTypes: true,
        skipTypename: true,
        scalars: { DateTime: 'string', JSON: 'unknown', JSONObject: 'Record<string, unknown>', Decimal: 'string' },
      },
    },
  },
  hooks: { afterAllFileWrite: [] },
};

export default config;

// ESLint (flat config) with typescript-eslint. Formatting, import order included, is Prettier's
// (.prettierrc.json: `npm run format`); the rules here are about code, not layout.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'test/generated/', 'dashboard/generated/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { ...globals.node },
      // type-graphql and MikroORM read the types of decorated members at run time (emitDecoratorMetadata):
      // told so, consistent-type-imports keeps those imports as values.
      parserOptions: { emitDecoratorMetadata: true, experimentalDecorators: true },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true },
      ],
      '@typescript-eslint/consistent-type-imports': [
        'error',
        { prefer: 'type-imports', fixStyle: 'inline-type-imports', disallowTypeAnnotations: false },
      ],
      '@typescript-eslint/no-import-type-side-effects': 'error',
      // Decorator-heavy code (type-graphql, MikroORM) and JSON at the edges: `any` is sometimes the honest type.
      '@typescript-eslint/no-explicit-any': 'off',
      // Entity and resolver lists are classes; `Function` is what type-graphql and MikroORM take.
      '@typescript-eslint/no-unsafe-function-type': 'off',
      // `interface Viewer extends ViewerShape {}` names a shape beside a decorator of the same name.
      '@typescript-eslint/no-empty-object-type': ['error', { allowInterfaces: 'with-single-extends' }],
      'no-constant-condition': ['error', { checkLoops: false }],
      // Sanitisers match control characters on purpose (PostgreSQL refuses U+0000, headers refuse the rest).
      'no-control-regex': 'off',
    },
  },
  { files: ['dashboard/src/**/*.ts', 'graphiql/src/**/*.js'], languageOptions: { globals: { ...globals.browser } } },
  {
    // A function over 80 lines usually does several jobs: split it into named pieces. One that is
    // a single job (a long statement, a list) says why beside an eslint-disable comment.
    files: ['src/**/*.ts'],
    rules: { 'max-lines-per-function': ['error', { max: 80, skipBlankLines: true, skipComments: true }] },
  },
);

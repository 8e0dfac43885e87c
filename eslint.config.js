import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'resources/agent/', 'resources/console/', 'resources/renderer/', 'test-output/', 'bench/out/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly',
        clearTimeout: 'readonly', setImmediate: 'readonly', setInterval: 'readonly', clearInterval: 'readonly',
        require: 'readonly', module: 'writable', __dirname: 'readonly' },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // The renderer runs in a browser page and reaches the backend only through the console API.
    files: ['renderer/**/*.ts'],
    languageOptions: { globals: { window: 'readonly', location: 'readonly', WebSocket: 'readonly', document: 'readonly', URLSearchParams: 'readonly' } },
    rules: { 'no-restricted-imports': ['error', { patterns: ['**/agent/**', '**/electron/**', 'node:*'] }] },
  },
  {
    // The npx launcher is plain CommonJS by necessity.
    files: ['bin/*.cjs'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // The agent and common code must not depend on the console, and common on nothing of ours.
    files: ['common/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['../agent/*', '../electron/*', '../renderer/*'] }] },
  },
  {
    files: ['agent/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['**/electron/**', '**/renderer/**'] }] },
  },
);

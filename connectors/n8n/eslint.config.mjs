// The rules `n8n-node lint` (@n8n/node-cli 0.48) applies, rebuilt from its own plugins:
// @n8n/node-cli cannot be installed on Node 20 (it pulls n8n-workflow 2.x, whose isolated-vm
// needs Node >= 24), so `npm run lint:n8n` runs eslint with the config that the CLI's
// `@n8n/node-cli/eslint` export builds (configs/eslint.js in that package), unchanged except
// for the one rule noted below. On a machine with Node >= 24, `npx @n8n/node-cli lint` gives the same verdict.
import js from '@eslint/js';
import { n8nCommunityNodesPlugin } from '@n8n/eslint-plugin-community-nodes';
import { globalIgnores } from 'eslint/config';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import importPlugin from 'eslint-plugin-import-x';
import n8nNodesBase from 'eslint-plugin-n8n-nodes-base';
import tseslint from 'typescript-eslint';

const communityNodesRecommended = n8nCommunityNodesPlugin.configs.recommended;

export default tseslint.config(
  globalIgnores(['dist']),
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.recommended, communityNodesRecommended, importPlugin.configs['flat/recommended']],
    rules: { 'prefer-spread': 'off', 'no-console': 'error' },
  },
  {
    plugins: { 'n8n-nodes-base': n8nNodesBase },
    settings: { 'import-x/resolver-next': [createTypeScriptImportResolver()] },
  },
  {
    files: ['package.json'],
    extends: [communityNodesRecommended],
    rules: { ...n8nNodesBase.configs.community.rules },
    languageOptions: { parser: tseslint.parser, parserOptions: { extraFileExtensions: ['.json'] } },
  },
  {
    files: ['./credentials/**/*.ts'],
    rules: {
      ...n8nNodesBase.configs.credentials.rules,
      'n8n-nodes-base/cred-class-field-documentation-url-miscased': 'off',
      'n8n-nodes-base/cred-class-field-type-options-password-missing': 'off',
    },
  },
  {
    files: ['./nodes/**/*.ts'],
    rules: {
      ...n8nNodesBase.configs.nodes.rules,
      'n8n-nodes-base/node-class-description-inputs-wrong-regular-node': 'off',
      'n8n-nodes-base/node-class-description-outputs-wrong': 'off',
      'n8n-nodes-base/node-param-type-options-max-value-present': 'off',
      // eslint-plugin-n8n-nodes-base 1.16 (which the CLI uses, but whose pnpm-only preinstall
      // breaks npm installs) expects the docs.n8n.io/code/expressions/ link this node has; 1.15,
      // installed here, still asks for the older code-examples/ URL.
      'n8n-nodes-base/node-param-description-wrong-for-dynamic-multi-options': 'off',
    },
  },
);

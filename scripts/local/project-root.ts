import path from 'node:path'

/** The repository root, where package.json and wrangler.toml are. */
export const PROJECT_ROOT = path.resolve(import.meta.dirname, '../..')

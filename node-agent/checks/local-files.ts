import type { AgentConfig } from '../config/schema.ts'
import { checkEngineFiles } from './engine-files.ts'
import type { Finding } from './finding.ts'
import { checkCachedSources } from './source-check.ts'
import { checkStateDir } from './state-dir-check.ts'
import { checkNodeToken, serviceUserUid } from './token-file.ts'

/**
 * What `validate` checks beyond the fields, offline: the token file, each pool's program and
 * model file, fetched files in the cache against their sha256, the state dir. `doctor` runs these first.
 */
export async function checkLocalFiles(config: AgentConfig): Promise<Finding[]> {
  const serviceUid = process.getuid?.() === 0 ? await serviceUserUid() : null
  return [...checkNodeToken(config, { serviceUid }), ...checkEngineFiles(config), ...(await checkCachedSources(config)), checkStateDir(config)]
}

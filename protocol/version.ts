import pkg from '../package.json' with { type: 'json' }

/** The release both the control plane and the agent report. */
export const LLORCH_VERSION: string = pkg.version

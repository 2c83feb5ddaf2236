/**
 * The `{name}` placeholders of a `command` pool's argv. `{node}` (the Node.js running the agent)
 * and `{config_dir}` (the config file's folder) are filled in when the config is loaded, the rest
 * when the engine starts.
 */
export const PLACEHOLDERS = ['port', 'host', 'model', 'slots', 'pool', 'node', 'config_dir'] as const

/** Replaces the placeholders that `values` has in one argument and leaves the others. */
export function fillPlaceholders(arg: string, values: Record<string, string>): string {
  return arg.replace(/\{([a-z_]+)\}/g, (whole, name: string) => values[name] ?? whole)
}

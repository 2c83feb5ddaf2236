import { accessSync, constants, statSync } from 'node:fs'
import path from 'node:path'

function isExecutableFile(file: string): boolean {
  try {
    accessSync(file, constants.X_OK)
    return statSync(file).isFile()
  } catch {
    return false
  }
}

/**
 * Where `name` would be run from, as execa finds it: a name with a slash is a path (relative to
 * `cwd`), any other is looked up on `PATH`. Null when there is no executable file there.
 */
export function findExecutable(name: string, { PATH = process.env.PATH ?? '', cwd = process.cwd() }: { PATH?: string; cwd?: string } = {}): string | null {
  if (name.includes('/')) {
    const file = path.resolve(cwd, name)
    return isExecutableFile(file) ? file : null
  }
  for (const dir of PATH.split(path.delimiter)) {
    if (!dir) continue
    const file = path.resolve(cwd, dir, name)
    if (isExecutableFile(file)) return file
  }
  return null
}

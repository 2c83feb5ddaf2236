/**
 * The headless Chromium that browser tests drive. `CHROMIUM_PATH` or Debian's `chromium` when
 * installed; otherwise the build that the npm package `@sparticuz/chromium` ships brotli-compressed,
 * with the NSS libraries it needs, unpacked once per package version into the temp dir, so a fresh
 * clone needs no root and no download outside the npm registry.
 */
import { createReadStream, createWriteStream, existsSync } from 'node:fs'
import { mkdtemp, readFile, rename, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { fileURLToPath } from 'node:url'
import { createBrotliDecompress } from 'node:zlib'
import { execa } from 'execa'
import type { LaunchOptions } from 'playwright-core'
import { z } from 'zod'

const SYSTEM_CHROMIUM = '/usr/bin/chromium'
/** Root runs the browser here, which Chromium's sandbox refuses; /dev/shm is small in containers. */
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-dev-shm-usage']

/** Launch options for playwright-core's `chromium.launch`. */
export async function chromiumLaunchOptions(): Promise<LaunchOptions> {
  const explicit = process.env.CHROMIUM_PATH
  if (explicit !== undefined && explicit !== '') return { executablePath: explicit, args: CHROMIUM_ARGS }
  if (existsSync(SYSTEM_CHROMIUM)) return { executablePath: SYSTEM_CHROMIUM, args: CHROMIUM_ARGS }
  const dir = await unpackedPackageChromium()
  // The package's NSS libraries go first, so the browser runs where Debian's libnss3 is absent.
  const libraryPath = [path.join(dir, 'lib'), process.env.LD_LIBRARY_PATH ?? ''].filter((part) => part !== '').join(path.delimiter)
  return { executablePath: path.join(dir, 'chromium'), args: CHROMIUM_ARGS, env: { ...process.env, LD_LIBRARY_PATH: libraryPath } }
}

/**
 * The folder holding `chromium` and `lib/`. It is unpacked into a folder of its own and renamed into
 * place, so a run that was killed halfway, or another run unpacking at the same time, never leaves
 * a partial browser behind.
 */
async function unpackedPackageChromium(): Promise<string> {
  const packageDir = path.dirname(path.dirname(fileURLToPath(import.meta.resolve('@sparticuz/chromium'))))
  const { version } = z.object({ version: z.string().min(1) }).parse(JSON.parse(await readFile(path.join(packageDir, 'package.json'), 'utf8')))
  const dir = path.join(tmpdir(), `llorch-chromium-${version}`)
  if (existsSync(path.join(dir, 'chromium'))) return dir
  const staging = await mkdtemp(path.join(tmpdir(), 'llorch-chromium-unpacking-'))
  try {
    const bin = path.join(packageDir, 'bin')
    await pipeline(
      createReadStream(path.join(bin, 'chromium.br')),
      createBrotliDecompress(),
      createWriteStream(path.join(staging, 'chromium'), { mode: 0o755 }),
    )
    // Amazon Linux's NSS libraries, as `lib/*.so`: the only shared libraries the browser links beyond glibc.
    const libsTar = path.join(staging, 'al2023.tar')
    await pipeline(createReadStream(path.join(bin, 'al2023.tar.br')), createBrotliDecompress(), createWriteStream(libsTar))
    await execa('tar', ['-xf', libsTar, '-C', staging])
    await rm(libsTar)
    await rename(staging, dir)
  } catch (error) {
    await rm(staging, { recursive: true, force: true })
    if (existsSync(path.join(dir, 'chromium'))) return dir
    throw error
  }
  return dir
}

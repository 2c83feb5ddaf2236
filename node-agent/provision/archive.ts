import { createWriteStream, mkdirSync, rmSync, renameSync } from 'node:fs'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { extract } from 'tar'
import yauzl from 'yauzl'
import { ProvisionError } from './provision-error.ts'

/** Whether an entry name stays inside the folder it is unpacked into. */
function staysInside(name: string): boolean {
  const normal = path.posix.normalize(name)
  return !path.posix.isAbsolute(normal) && normal !== '..' && !normal.startsWith('../')
}

async function unzipEntry(zip: yauzl.ZipFile, entry: yauzl.Entry, file: string, dir: string): Promise<void> {
  if (!staysInside(entry.fileName)) throw new ProvisionError('bad_archive', `${path.basename(file)}: entry ${entry.fileName} points outside the archive`)
  const target = path.join(dir, entry.fileName)
  if (entry.fileName.endsWith('/')) {
    mkdirSync(target, { recursive: true })
    return
  }
  mkdirSync(path.dirname(target), { recursive: true })
  // The high 16 bits of the external attributes are the Unix mode where the archiver recorded one.
  const mode = (entry.externalFileAttributes >>> 16) & 0o777
  await pipeline(await zip.openReadStreamPromise(entry), createWriteStream(target, { mode: mode === 0 ? 0o644 : mode }))
}

async function unzip(file: string, dir: string): Promise<void> {
  const zip = await yauzl.openPromise(file, { lazyEntries: true })
  try {
    await new Promise<void>((resolve, reject) => {
      zip.on('error', reject)
      zip.on('end', () => resolve())
      zip.on('entry', (entry: yauzl.Entry) => {
        unzipEntry(zip, entry, file, dir).then(() => zip.readEntry(), reject)
      })
      zip.readEntry()
    })
  } finally {
    zip.close()
  }
}

/**
 * Unpacks a `.tar.gz`/`.tgz` or `.zip` release archive into `dir` (via a sibling folder renamed
 * at the end, so a half-unpacked archive is never used). Entries leaving the folder are refused.
 */
export async function unpackArchive({ file, name, dir }: { file: string; name: string; dir: string }): Promise<void> {
  const staging = `${dir}.unpacking`
  rmSync(staging, { recursive: true, force: true })
  mkdirSync(staging, { recursive: true })
  try {
    if (/\.(tar\.gz|tgz)$/.test(name)) {
      await extract({ file, cwd: staging, strict: true, preservePaths: false })
    } else if (name.endsWith('.zip')) {
      await unzip(file, staging)
    } else {
      throw new ProvisionError('bad_archive', `${name}: expected a .tar.gz, .tgz or .zip archive`)
    }
  } catch (error) {
    rmSync(staging, { recursive: true, force: true })
    if (error instanceof ProvisionError) throw error
    throw new ProvisionError('bad_archive', `${name}: cannot unpack (${error instanceof Error ? error.message : String(error)})`, { cause: error })
  }
  rmSync(dir, { recursive: true, force: true })
  renameSync(staging, dir)
}

import { z } from 'zod'
import { describeIssues } from '../protocol/index.ts'
import { readJsonFile } from './json-file.ts'

/**
 * What workerd needs to know about the Worker besides its bundle, taken from wrangler.toml:
 * the same compatibility settings, vars and Durable Object classes `wrangler deploy` uploads.
 * A release carries it as `lib/worker/manifest.json`; in the repository it is read from
 * wrangler.toml at start.
 */
export const WorkerManifest = z.object({
  name: z.string().min(1),
  compatibilityDate: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'expected YYYY-MM-DD'),
  compatibilityFlags: z.array(z.string().min(1)),
  vars: z.record(z.string(), z.string()),
  durableObjects: z.array(
    z.object({
      binding: z.string().min(1),
      className: z.string().min(1),
      /** Declared by a `new_sqlite_classes` migration: the class may use `ctx.storage.sql`. */
      sql: z.boolean(),
    }),
  ),
  /** The last Durable Object migration tag, for `llorch serve doctor`. */
  migrationTag: z.string().nullable(),
})
export type WorkerManifest = z.infer<typeof WorkerManifest>

/** The subset of wrangler's parsed config that the home profile can run. */
const WranglerConfig = z.object({
  name: z.string().min(1, 'expected the Worker name'),
  compatibility_date: z.string({ error: 'expected compatibility_date' }),
  compatibility_flags: z.array(z.string()).default([]),
  vars: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String)).default({}),
  durable_objects: z
    .object({
      bindings: z.array(
        z.object({
          name: z.string(),
          class_name: z.string(),
          script_name: z.undefined({ error: 'a Durable Object of another Worker cannot run in llorch serve' }).optional(),
        }),
      ),
    })
    .default({ bindings: [] }),
  migrations: z
    .array(
      z.object({
        tag: z.string(),
        new_classes: z.array(z.string()).default([]),
        new_sqlite_classes: z.array(z.string()).default([]),
        renamed_classes: z.array(z.unknown()).max(0, 'renamed_classes is not supported by llorch serve').default([]),
        deleted_classes: z.array(z.unknown()).max(0, 'deleted_classes is not supported by llorch serve').default([]),
      }),
    )
    .default([]),
})

/** Turns wrangler's parsed config into the manifest; throws naming `file` and the field. */
export function manifestFromWranglerConfig(config: unknown, file: string): WorkerManifest {
  const parsed = WranglerConfig.safeParse(config)
  if (!parsed.success) throw new Error(`${file}: ${describeIssues(parsed.error.issues)}`)
  const { name, compatibility_date, compatibility_flags, vars, durable_objects, migrations } = parsed.data
  const sqlClasses = new Set(migrations.flatMap((m) => m.new_sqlite_classes))
  const declared = new Set([...sqlClasses, ...migrations.flatMap((m) => m.new_classes)])
  const undeclared = durable_objects.bindings.filter((b) => !declared.has(b.class_name))
  if (undeclared.length > 0)
    throw new Error(`${file}: durable_objects.bindings: ${undeclared.map((b) => b.class_name).join(', ')} has no [[migrations]] entry creating it`)
  return WorkerManifest.parse({
    name,
    compatibilityDate: compatibility_date,
    compatibilityFlags: compatibility_flags,
    vars,
    durableObjects: durable_objects.bindings.map((b) => ({ binding: b.name, className: b.class_name, sql: sqlClasses.has(b.class_name) })),
    migrationTag: migrations.at(-1)?.tag ?? null,
  })
}

/** Reads a release's `manifest.json`; throws naming the file and the field. */
export function readWorkerManifest(file: string): WorkerManifest {
  return readJsonFile(file, WorkerManifest, 'the Worker manifest')
}

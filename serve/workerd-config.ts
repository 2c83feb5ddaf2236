import path from 'node:path'
import type { WorkerManifest } from './worker-manifest.ts'

/** The environment variables workerd reads the Worker's secrets from (`fromEnvironment`). */
export const SECRET_ENV = { adminToken: 'ADMIN_TOKEN', libsqlAuthToken: 'LIBSQL_AUTH_TOKEN' } as const

export interface WorkerdConfigInput {
  manifest: WorkerManifest
  /** Where the config file will be written: `embed` paths are relative to it. */
  configFile: string
  bundleFile: string
  /** The Durable Objects' SQLite files live here, a folder per class. */
  objectsDir: string
  host: string
  port: number
  /**
   * Certificate chain and private key (PEM) for workerd's own HTTPS; plain HTTP without. With
   * them, `loopbackPort` is a second, plain-HTTP socket on 127.0.0.1 for this machine's own
   * agent and tools, which the certificate's name would not match.
   */
  tls?: { certFile: string; keyFile: string; loopbackPort: number } | undefined
  libsqlUrl: string
}

/** A Cap'n Proto text literal; the values here are paths, URLs and names, so ASCII is required. */
function text(value: string): string {
  if (!/^[\x20-\x7e]*$/.test(value)) throw new Error(`workerd config: ${JSON.stringify(value)} has characters outside printable ASCII`)
  return JSON.stringify(value)
}

function embed(configFile: string, file: string): string {
  return `embed ${text(path.relative(path.dirname(configFile), file))}`
}

/** `host:port` as workerd's address parser reads it (IPv6 in brackets). */
function address(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`
}

/**
 * The `workerd serve` config (Cap'n Proto text) for the bundle `wrangler deploy` would upload:
 * compatibility date and flags, vars as text bindings, secrets from the environment, each
 * Durable Object class with its namespace binding and on-disk storage, and a socket. The
 * outbound network allows loopback too, because the registry is the local libSQL server.
 */
export function workerdConfig(input: WorkerdConfigInput): string {
  const { manifest, configFile } = input
  const bindings = [
    ...Object.entries(manifest.vars).map(([name, value]) => `(name = ${text(name)}, text = ${text(value)})`),
    `(name = "LIBSQL_URL", text = ${text(input.libsqlUrl)})`,
    `(name = "ADMIN_TOKEN", fromEnvironment = ${text(SECRET_ENV.adminToken)})`,
    `(name = "LIBSQL_AUTH_TOKEN", fromEnvironment = ${text(SECRET_ENV.libsqlAuthToken)})`,
    ...manifest.durableObjects.map((d) => `(name = ${text(d.binding)}, durableObjectNamespace = ${text(d.className)})`),
  ]
  const namespaces = manifest.durableObjects.map(
    (d) => `(className = ${text(d.className)}, uniqueKey = ${text(`${manifest.name}-${d.className}`)}, enableSql = ${d.sql})`,
  )
  const listen = address(input.host, input.port)
  const socket = input.tls
    ? `(name = "http", address = ${text(listen)}, https = (options = (), tlsOptions = (keypair = (privateKey = ${embed(configFile, input.tls.keyFile)}, certificateChain = ${embed(configFile, input.tls.certFile)}))), service = "control-plane")`
    : `(name = "http", address = ${text(listen)}, http = (), service = "control-plane")`
  const sockets = input.tls
    ? [socket, `(name = "loopback", address = ${text(address('127.0.0.1', input.tls.loopbackPort))}, http = (), service = "control-plane")`]
    : [socket]
  const list = (items: string[]) => items.map((item) => `\n    ${item},`).join('')
  return `# Written by llorch serve at each start from the release's Worker manifest; edits are overwritten.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "control-plane", worker = .controlPlane),
    (name = "objects", disk = (path = ${text(input.objectsDir)}, writable = true)),
    (name = "internet", network = (allow = ["public", "local"], tlsOptions = (trustBrowserCas = true))),
  ],
  sockets = [${list(sockets)}
  ],
);

const controlPlane :Workerd.Worker = (
  modules = [(name = ${text(path.basename(input.bundleFile))}, esModule = ${embed(configFile, input.bundleFile)})],
  compatibilityDate = ${text(manifest.compatibilityDate)},
  compatibilityFlags = [${manifest.compatibilityFlags.map(text).join(', ')}],
  bindings = [${list(bindings)}
  ],
  durableObjectNamespaces = [${list(namespaces)}
  ],
  durableObjectStorage = (localDisk = "objects"),
);
`
}

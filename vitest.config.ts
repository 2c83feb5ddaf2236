import { cloudflareTest } from '@cloudflare/vitest-plugin'
import { defineConfig } from 'vitest/config'
import type { TestCase, TestModule, TestSuite } from 'vitest/node'

/**
 * The fuzzers send thousands of inputs that the Worker refuses and logs one by one; of what a
 * fuzz test module prints, only its own `fuzz.*` summary lines (seeds, input counts) are kept.
 */
function keepLog(log: string, entity: TestModule | TestCase | TestSuite | undefined): boolean {
  const moduleId = entity === undefined ? '' : entity.type === 'module' ? entity.moduleId : entity.module.moduleId
  return !/\/fuzz-[^/]+\.test\.ts$/.test(moduleId) || log.startsWith('{"event":"fuzz.')
}

/**
 * Test files run three at a time on a 2-core machine. Most of an e2e file's time is spent waiting
 * on the processes it started (workerd, agents, engines): with two at a time the cores were busy
 * 1.4 of 2 on average (`time` of a clean-clone run), and a third file fills the gaps (vitest 318 s
 * with two, 268 s with three).
 */
const MAX_WORKERS = 3

const STORM_TEST = 'test/faults/agent-storm.test.ts'

export default defineConfig({
  test: {
    onConsoleLog: (log, _type, entity) => keepLog(log, entity),
    maxWorkers: MAX_WORKERS,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
          // No unit file changes globals or mocks modules, so files share a worker and its loaded modules.
          isolate: false,
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          environment: 'node',
          // What an e2e file starts lives in other processes, stopped after each test by pid.
          isolate: false,
          globalSetup: ['test/e2e/global-setup.ts'],
          testTimeout: 90_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'faults',
          include: ['test/faults/**/*.test.ts'],
          exclude: [STORM_TEST],
          environment: 'node',
          globalSetup: ['test/e2e/global-setup.ts'],
          testTimeout: 90_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'faults-storm',
          include: [STORM_TEST],
          environment: 'node',
          // Alone, after every other file: the 1,000-agent storm saturates both cores for its run,
          // and the files beside it would time heartbeats and reconnects on what is left.
          fileParallelism: false,
          globalSetup: ['test/e2e/global-setup.ts'],
          testTimeout: 90_000,
          hookTimeout: 120_000,
        },
      },
      {
        plugins: [
          cloudflareTest(({ inject }) => ({
            wrangler: { configPath: './wrangler.toml' },
            miniflare: {
              bindings: {
                LIBSQL_URL: inject<string>('libsqlUrl'),
                LIBSQL_AUTH_TOKEN: inject<string>('libsqlAuthToken'),
                ADMIN_TOKEN: 'test-admin-token-0123456789abcdef',
              },
            },
          })),
        ],
        test: {
          name: 'workers',
          include: ['test/workers/**/*.test.ts'],
          globalSetup: ['test/workers/global-setup.ts'],
          // A ceiling, not a speed check: a fuzz property shares the cores with another test file.
          testTimeout: 90_000,
        },
      },
    ],
  },
})

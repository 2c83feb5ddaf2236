import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

const ROOT = path.resolve(import.meta.dirname, '../../..')
/** The source folders; tests sit on top of them and may import anything. */
const SOURCE_ROOTS = ['cli', 'control-plane', 'db', 'node-agent', 'protocol', 'scripts']

/** Folder → the folders its files import from, over every tracked source file. */
function folderGraph(): Map<string, Set<string>> {
  const files = execFileSync('git', ['ls-files', ...SOURCE_ROOTS.map((root) => `${root}/*.ts`)], { cwd: ROOT, encoding: 'utf8' })
    .trim()
    .split('\n')
  const graph = new Map<string, Set<string>>()
  for (const file of files) {
    const from = path.dirname(file)
    const edges = graph.get(from) ?? new Set<string>()
    graph.set(from, edges)
    for (const { fileName } of ts.preProcessFile(readFileSync(path.join(ROOT, file), 'utf8'), true, true).importedFiles) {
      if (!fileName.startsWith('.')) continue
      const to = path.dirname(path.normalize(path.join(from, fileName)))
      if (to !== from) edges.add(to)
    }
  }
  return graph
}

/** Strongly connected components with more than one folder (Tarjan): each is an import cycle. */
function cycles(graph: Map<string, Set<string>>): string[][] {
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const found: string[][] = []
  const visit = (node: string): void => {
    index.set(node, index.size)
    low.set(node, index.get(node) ?? 0)
    stack.push(node)
    onStack.add(node)
    for (const next of graph.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next)
        low.set(node, Math.min(low.get(node) ?? 0, low.get(next) ?? 0))
      } else if (onStack.has(next)) low.set(node, Math.min(low.get(node) ?? 0, index.get(next) ?? 0))
    }
    if (low.get(node) !== index.get(node)) return
    const component: string[] = []
    for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
      onStack.delete(top)
      component.push(top)
      if (top === node) break
    }
    if (component.length > 1) found.push(component.sort())
  }
  for (const node of graph.keys()) if (!index.has(node)) visit(node)
  return found
}

describe('the source folders', () => {
  it('import each other in one direction only: no cycle between folders', () => {
    const graph = folderGraph()
    expect(graph.size).toBeGreaterThan(20)
    expect(cycles(graph)).toEqual([])
  })

  it('finds a cycle when there is one', () => {
    const graph = new Map([
      ['a', new Set(['b'])],
      ['b', new Set(['c'])],
      ['c', new Set(['a'])],
      ['d', new Set(['a'])],
    ])
    expect(cycles(graph)).toEqual([['a', 'b', 'c']])
  })
})

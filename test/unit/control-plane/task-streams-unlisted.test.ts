import { describe, expect, it } from 'vitest'
import { TaskStreams, UNLISTED_DISPATCH_GRACE_MS } from '../../../control-plane/node/task-streams.ts'

describe('TaskStreams.unlisted', () => {
  it('names the streamed tasks a heartbeat leaves out once their dispatch had the grace to arrive', () => {
    const streams = new TaskStreams(() => {})
    const openedBy = Date.now()
    streams.open('listed', 'p')
    streams.open('swallowed', 'p')
    expect(streams.unlisted(['listed'], openedBy), 'a dispatch and a heartbeat may cross').toEqual([])
    expect(streams.unlisted(['listed'], Date.now() + UNLISTED_DISPATCH_GRACE_MS)).toEqual(['swallowed'])
    streams.deliver('swallowed', { kind: 'end', finish_reason: 'stop', usage: null })
    expect(streams.unlisted([], Date.now() + UNLISTED_DISPATCH_GRACE_MS), 'an ended stream is no longer open').toEqual(['listed'])
  })
})

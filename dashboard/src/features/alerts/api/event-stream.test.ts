import { afterEach, describe, expect, it, vi } from 'vitest';

import {
  EventStreamParser,
  openLiveStream,
  reconnectDelay,
  type ServerSentEvent,
  type StreamStatus,
} from './event-stream';

describe('EventStreamParser', () => {
  it('dispatches an event on the blank line, with its name, id and multi-line data', () => {
    const parser = new EventStreamParser();
    const events = parser.push('id: 17-0\nevent: alert.raised\ndata: {"a":\ndata: 1}\n\n');
    expect(events).toEqual([{ id: '17-0', event: 'alert.raised', data: '{"a":\n1}' }]);
  });

  it('keeps a line cut between chunks, including a CRLF cut in half', () => {
    const parser = new EventStreamParser();
    expect(parser.push('data: hel')).toEqual([]);
    expect(parser.push('lo\r')).toEqual([]);
    expect(parser.push('\n\r\n')).toEqual([{ id: undefined, event: 'message', data: 'hello' }]);
  });

  it('ignores comments such as the keep-alive and reads retry', () => {
    const parser = new EventStreamParser();
    expect(parser.push('retry: 2000\n\n: keepalive\n\n')).toEqual([]);
    expect(parser.retryMs).toBe(2000);
  });

  it('keeps the last id for later events and for a block without data', () => {
    const parser = new EventStreamParser();
    parser.push('id: 1-0\n\n');
    expect(parser.lastEventId).toBe('1-0');
    expect(parser.push('data: x\n\n')).toEqual([{ id: '1-0', event: 'message', data: 'x' }]);
  });

  it('removes one leading space only and accepts a field without a colon', () => {
    const parser = new EventStreamParser();
    expect(parser.push('data:  two\ndata\n\n')).toEqual([
      { id: undefined, event: 'message', data: ' two\n' },
    ]);
  });
});

describe('reconnectDelay', () => {
  it.each([
    [0, 0, 500],
    [1, 0, 1000],
    [3, 0, 4000],
    [10, 0, 15000],
    [0, 0.999999, 1000],
  ])('attempt %i with jitter %f waits %i ms', (attempt, random, expected) => {
    expect(reconnectDelay(attempt, 1000, 30000, () => random)).toBe(expected);
  });
});

/** A response whose body the test writes to, as a server would. */
function serverStream() {
  const encoder = new TextEncoder();
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
  });
  return {
    response: new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } }),
    send: (text: string) => controller.enqueue(encoder.encode(text)),
    end: () => controller.close(),
    fail: () => controller.error(new TypeError('network error')),
  };
}

type Answer = ReturnType<typeof serverStream> | number;

/** Replaces fetch; each call takes the next answer (a live stream or an HTTP status). */
function stubStreamFetch(answers: Answer[]) {
  const requests: Headers[] = [];
  const fetchStub = vi.fn((_url: string, init: RequestInit) => {
    requests.push(new Headers(init.headers));
    const answer = answers.shift();
    if (answer === undefined) return new Promise<Response>(() => undefined); // hangs, as if slow
    if (typeof answer === 'number') {
      return Promise.resolve(
        new Response(JSON.stringify({ title: 'down', status: answer }), { status: answer }),
      );
    }
    return Promise.resolve(answer.response);
  });
  vi.stubGlobal('fetch', fetchStub);
  return { fetchStub, requests };
}

function collect() {
  const events: ServerSentEvent[] = [];
  const statuses: StreamStatus[] = [];
  return {
    events,
    statuses,
    onEvent: (e: ServerSentEvent) => events.push(e),
    onStatus: (s: StreamStatus) => statuses.push(s),
  };
}

describe('openLiveStream', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it('delivers events and resumes after the last id when the connection drops', async () => {
    const first = serverStream();
    const second = serverStream();
    const { fetchStub, requests } = stubStreamFetch([first, second]);
    const seen = collect();
    const stream = openLiveStream({ url: '/api/alerts/stream', initialDelayMs: 1, ...seen });

    first.send('retry: 5\n\nid: 100-0\nevent: alert.raised\ndata: {"id":"a"}\n\n');
    first.send('id: 101-0\nevent: alert.updated\ndata: {"id":"b"}\n\n');
    await vi.waitFor(() => expect(seen.events).toHaveLength(2));
    first.fail();

    await vi.waitFor(() => expect(fetchStub).toHaveBeenCalledTimes(2));
    expect(requests[0]?.has('Last-Event-ID')).toBe(false);
    expect(requests[1]?.get('Last-Event-ID')).toBe('101-0');
    second.send('id: 102-0\nevent: alert.resolved\ndata: {"id":"a"}\n\n');
    await vi.waitFor(() => expect(seen.events).toHaveLength(3));
    expect(seen.events.map((e) => [e.id, e.event])).toEqual([
      ['100-0', 'alert.raised'],
      ['101-0', 'alert.updated'],
      ['102-0', 'alert.resolved'],
    ]);
    expect(seen.statuses.filter((s) => s.state === 'open').map((s) => s.resumed)).toEqual([
      false,
      true,
    ]);
    expect(stream.lastEventId).toBe('102-0');
    stream.close();
  });

  it('keeps retrying through HTTP errors with a growing delay, then resets it', async () => {
    const good = serverStream();
    const later = serverStream();
    const { fetchStub, requests } = stubStreamFetch([502, 503, 503, good, later]);
    const seen = collect();
    const stream = openLiveStream({
      url: '/api/alerts/stream',
      lastEventId: '7-0',
      initialDelayMs: 4,
      random: () => 0,
      ...seen,
    });

    await vi.waitFor(() => expect(fetchStub).toHaveBeenCalledTimes(4));
    const delays = () =>
      seen.statuses.filter((s) => s.state === 'reconnecting').map((s) => s.retryInMs);
    expect(delays()).toEqual([2, 4, 8]);
    // Every attempt asks to resume after the id it was given.
    expect(requests.map((h) => h.get('Last-Event-ID'))).toEqual(['7-0', '7-0', '7-0', '7-0']);
    good.end();
    await vi.waitFor(() => expect(fetchStub).toHaveBeenCalledTimes(5));
    expect(delays()).toEqual([2, 4, 8, 2]);
    stream.close();
  });

  it('gives up on 401: the session has ended and retrying cannot help', async () => {
    const { fetchStub } = stubStreamFetch([401]);
    const seen = collect();
    openLiveStream({ url: '/api/alerts/stream', initialDelayMs: 1, ...seen });

    await vi.waitFor(() => expect(seen.statuses.at(-1)?.state).toBe('closed'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(fetchStub).toHaveBeenCalledTimes(1);
  });

  it('starts afresh when the server refuses the resume id', async () => {
    const { fetchStub, requests } = stubStreamFetch([400, serverStream()]);
    const seen = collect();
    const stream = openLiveStream({
      url: '/api/alerts/stream',
      lastEventId: 'stale',
      initialDelayMs: 1,
      ...seen,
    });

    await vi.waitFor(() => expect(fetchStub).toHaveBeenCalledTimes(2));
    expect(requests[0]?.get('Last-Event-ID')).toBe('stale');
    expect(requests[1]?.has('Last-Event-ID')).toBe(false);
    stream.close();
  });

  it('stops reconnecting once closed', async () => {
    const first = serverStream();
    const { fetchStub } = stubStreamFetch([first, serverStream()]);
    const seen = collect();
    const stream = openLiveStream({ url: '/api/alerts/stream', initialDelayMs: 1, ...seen });
    await vi.waitFor(() => expect(seen.statuses.some((s) => s.state === 'open')).toBe(true));

    stream.close();
    await vi.waitFor(() => expect(seen.statuses.at(-1)?.state).toBe('closed'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(fetchStub).toHaveBeenCalledTimes(1);
  });
});

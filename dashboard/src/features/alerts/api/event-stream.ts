/**
 * A Server-Sent Events reader over `fetch` that reconnects by itself and resumes where it stopped.
 *
 * A native EventSource gives up for good on an HTTP error (a 502 while the gateway restarts) and
 * only resends `Last-Event-ID` on its own reconnects, so the stream is read here instead: every
 * reconnect waits a growing, jittered delay and sends the id of the last event seen.
 */

import { sleep } from '@/lib/sleep';

export interface ServerSentEvent {
  /** The last event id in effect when the event was dispatched (ids are sticky, as in the spec). */
  id: string | undefined;
  event: string;
  data: string;
}

/** Incremental parser of the `text/event-stream` format (WHATWG HTML, "Server-sent events"). */
export class EventStreamParser {
  private buffer = '';
  private dataLines: string[] = [];
  private eventName = '';
  private idBuffer: string | undefined;
  /** The reconnection time the server asked for with `retry:`, in milliseconds. */
  retryMs: number | undefined;

  get lastEventId(): string | undefined {
    return this.idBuffer;
  }

  push(chunk: string): ServerSentEvent[] {
    this.buffer += chunk;
    const events: ServerSentEvent[] = [];
    let start = 0;
    for (let i = 0; i < this.buffer.length; i += 1) {
      const char = this.buffer[i];
      if (char !== '\n' && char !== '\r') continue;
      if (char === '\r' && i === this.buffer.length - 1) break; // a "\n" may follow in the next chunk
      const line = this.buffer.slice(start, i);
      if (char === '\r' && this.buffer[i + 1] === '\n') i += 1;
      start = i + 1;
      const event = this.line(line);
      if (event) events.push(event);
    }
    this.buffer = this.buffer.slice(start);
    return events;
  }

  private line(line: string): ServerSentEvent | undefined {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return undefined; // a comment, e.g. the server's keep-alive
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.dataLines.push(value);
    else if (field === 'event') this.eventName = value;
    else if (field === 'id' && !value.includes('\0')) this.idBuffer = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.retryMs = Number(value);
    return undefined;
  }

  private dispatch(): ServerSentEvent | undefined {
    const dataLines = this.dataLines;
    const event = this.eventName || 'message';
    this.dataLines = [];
    this.eventName = '';
    if (dataLines.length === 0) return undefined;
    return { id: this.idBuffer, event, data: dataLines.join('\n') };
  }
}

export type StreamState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface StreamStatus {
  state: StreamState;
  /** Whether an open connection continues after the last event seen (no gap to fill). */
  resumed?: boolean;
  /** Milliseconds until the next attempt, while reconnecting. */
  retryInMs?: number;
  /** Why the last connection ended, if it failed. */
  error?: unknown;
}

export interface LiveStreamOptions {
  url: string;
  onEvent: (event: ServerSentEvent) => void;
  onStatus?: (status: StreamStatus) => void;
  /** Resume after this event id on the first connection too. */
  lastEventId?: string;
  /** The first reconnect delay until the server sends its own `retry:`. */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** A number in [0, 1) for jitter; injectable so tests are deterministic. */
  random?: () => number;
}

export interface LiveStream {
  close: () => void;
  readonly lastEventId: string | undefined;
}

export class StreamHttpError extends Error {
  constructor(readonly status: number) {
    super(`The live feed answered HTTP ${status}.`);
    this.name = 'StreamHttpError';
  }
}

/** 401 and 403 will not heal by retrying: the session is gone or lacks the permission. */
const FATAL_STATUSES = new Set([401, 403]);

export function reconnectDelay(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number,
): number {
  const exponential = Math.min(maxMs, baseMs * 2 ** attempt);
  // Between half and all of it, so clients cut off together do not come back together.
  return Math.round(exponential * (0.5 + random() / 2));
}

export function openLiveStream(options: LiveStreamOptions): LiveStream {
  const { url, onEvent, onStatus = () => undefined } = options;
  const maxDelayMs = options.maxDelayMs ?? 30_000;
  const random = options.random ?? Math.random;
  const controller = new AbortController();
  const { signal } = controller;
  let lastEventId = options.lastEventId;
  let baseDelayMs = options.initialDelayMs ?? 1000;
  let connected = false;

  async function readOnce(): Promise<void> {
    const headers: Record<string, string> = { Accept: 'text/event-stream' };
    if (lastEventId !== undefined) headers['Last-Event-ID'] = lastEventId;
    const response = await fetch(url, {
      headers,
      credentials: 'same-origin',
      cache: 'no-store',
      signal,
    });
    if (!response.ok || response.body === null) throw new StreamHttpError(response.status);
    connected = true;
    onStatus({ state: 'open', resumed: lastEventId !== undefined });
    const parser = new EventStreamParser();
    const decoder = new TextDecoder();
    const reader = response.body.getReader();
    // Ends a pending read at once on close, whatever the fetch implementation does on abort.
    const stop = (): void => void reader.cancel().catch(() => undefined);
    signal.addEventListener('abort', stop, { once: true });
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        for (const event of parser.push(decoder.decode(value, { stream: true }))) {
          lastEventId = event.id ?? lastEventId;
          onEvent(event);
        }
        if (parser.retryMs !== undefined) baseDelayMs = parser.retryMs;
      }
    } finally {
      signal.removeEventListener('abort', stop);
      reader.releaseLock();
    }
  }

  async function run(): Promise<void> {
    let attempt = 0;
    onStatus({ state: 'connecting' });
    while (!signal.aborted) {
      let error: unknown;
      connected = false;
      try {
        await readOnce();
      } catch (caught) {
        error = caught;
      }
      if (signal.aborted) break;
      if (error instanceof StreamHttpError) {
        if (FATAL_STATUSES.has(error.status)) {
          onStatus({ state: 'closed', error });
          return;
        }
        // The server refused the id (e.g. from another deployment): start afresh, the list reloads.
        if (error.status === 400) lastEventId = undefined;
      }
      if (connected) attempt = 0; // it worked until it ended: try again soon
      const retryInMs = reconnectDelay(attempt, baseDelayMs, maxDelayMs, random);
      attempt += 1;
      onStatus({ state: 'reconnecting', retryInMs, error });
      await sleep(retryInMs, signal);
    }
    onStatus({ state: 'closed' });
  }

  void run();
  return {
    close: () => controller.abort(),
    get lastEventId() {
      return lastEventId;
    },
  };
}

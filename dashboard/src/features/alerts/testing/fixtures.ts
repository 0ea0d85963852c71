/** Test doubles at the browser boundary: alerts as the API sends them, and a live feed. */
import { vi } from 'vitest';

import { stubFetch, type RecordedRequest, type StubHandler, type StubResponse } from '@/test/fetch';

import type { Alert, HistoryEntry } from '../types';

let serial = 0;

export function makeAlert(overrides: Partial<Alert> = {}): Alert {
  serial += 1;
  const id = overrides.id ?? `00000000-0000-4000-8000-${String(serial).padStart(12, '0')}`;
  return {
    id,
    fingerprint: `fp${serial}`.padEnd(32, '0'),
    source: 'resource.status_changed',
    severity: 'warning',
    status: 'firing',
    labels: { alertname: `Alert${serial}`, severity: overrides.severity ?? 'warning' },
    annotations: {},
    starts_at: '2026-11-30T07:00:00Z',
    ends_at: null,
    generator_url: null,
    observed_at: '2026-11-30T07:00:00Z',
    suppressed: false,
    silenced_by: [],
    inhibited_by: [],
    acknowledged_by: null,
    acknowledged_at: null,
    resolved_by: null,
    resolved_at: null,
    created_at: '2026-11-30T07:00:00Z',
    updated_at: '2026-11-30T07:00:00Z',
    ...overrides,
  };
}

export function historyEntry(overrides: Partial<HistoryEntry> = {}): HistoryEntry {
  return {
    at: '2026-11-30T07:00:00Z',
    actor: 'system',
    action: 'raised',
    from_status: null,
    to_status: 'firing',
    comment: null,
    ...overrides,
  };
}

export interface LiveFeed {
  /** Sends one alert change on the currently open stream. */
  send: (kind: string, alert: Alert, id: string) => void;
  /** Drops the current connection, as a restarting gateway would. */
  drop: () => void;
  /** `Last-Event-ID` of each stream request, in order (null when absent). */
  resumeIds: (string | null)[];
  requests: RecordedRequest[];
}

/**
 * Stubs `fetch`: JSON routes as in `stubFetch`, and `/api/alerts/stream` as a live SSE body the
 * test writes to. Every stream request gets a new connection.
 */
export function stubAlertsApi(routes: Record<string, StubHandler | StubResponse>): LiveFeed {
  const requests = stubFetch(routes);
  const jsonFetch = globalThis.fetch;
  const encoder = new TextEncoder();
  let current: ReadableStreamDefaultController<Uint8Array> | null = null;
  const resumeIds: (string | null)[] = [];

  vi.stubGlobal('fetch', (input: RequestInfo | URL, init: RequestInit = {}) => {
    if (!String(input).startsWith('/api/alerts/stream')) return jsonFetch(input, init);
    resumeIds.push(new Headers(init.headers).get('Last-Event-ID'));
    let own: ReadableStreamDefaultController<Uint8Array> | null = null;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        own = controller;
        current = controller;
        controller.enqueue(encoder.encode('retry: 5\n\n'));
      },
    });
    // As in a browser, aborting the request fails the pending read.
    init.signal?.addEventListener('abort', () => {
      try {
        own?.error(new DOMException('The request was aborted.', 'AbortError'));
      } catch {
        // already closed
      }
    });
    return Promise.resolve(
      new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } }),
    );
  });

  return {
    send: (kind, alert, id) => {
      current?.enqueue(encoder.encode(`id: ${id}\nevent: ${kind}\ndata: ${JSON.stringify(alert)}\n\n`));
    },
    drop: () => {
      current?.error(new TypeError('network error'));
      current = null;
    },
    resumeIds,
    requests,
  };
}

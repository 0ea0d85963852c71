import { vi } from 'vitest';

export interface StubResponse {
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export type StubHandler = (url: URL, init: RequestInit) => StubResponse | Promise<StubResponse>;

export interface RecordedRequest {
  url: URL;
  method: string;
  headers: Headers;
  body: unknown;
}

/** Envelope the gateway wraps successful answers in. */
export function ok(data: unknown, meta: Record<string, unknown> = {}): StubResponse {
  return { status: 200, body: { success: true, data, meta } };
}

export function problem(status: number, title: string, extra: Record<string, unknown> = {}): StubResponse {
  return {
    status,
    body: { type: 'about:blank', title, status, ...extra },
    headers: { 'Content-Type': 'application/problem+json' },
  };
}

/**
 * Replaces `fetch` with a router over path prefixes (longest match wins; `METHOD /path` keys
 * match one method). Unmatched requests answer 404 problem+json. Returns the requests seen.
 */
export function stubFetch(routes: Record<string, StubHandler | StubResponse>): RecordedRequest[] {
  const seen: RecordedRequest[] = [];
  const keys = Object.keys(routes).sort((a, b) => b.length - a.length);
  const fetchStub = vi.fn(async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = new URL(String(input instanceof Request ? input.url : input), 'http://localhost');
    const method = (init.method ?? 'GET').toUpperCase();
    const headers = new Headers(init.headers);
    let body: unknown = init.body;
    if (typeof body === 'string' && headers.get('Content-Type')?.includes('json')) {
      body = JSON.parse(body) as unknown;
    }
    seen.push({ url, method, headers, body });
    const key = keys.find((candidate) => {
      const [maybeMethod, maybePath] = candidate.includes(' ') ? candidate.split(' ', 2) : [null, candidate];
      if (maybeMethod && maybeMethod !== method) return false;
      return url.pathname === maybePath || url.pathname.startsWith(`${maybePath ?? ''}/`) || `${url.pathname}${url.search}`.startsWith(maybePath ?? '');
    });
    const route = key === undefined ? undefined : routes[key];
    const answer: StubResponse =
      route === undefined
        ? problem(404, 'Not Found')
        : typeof route === 'function'
          ? await route(url, init)
          : route;
    const status = answer.status ?? 200;
    const responseHeaders = new Headers({ 'Content-Type': 'application/json', ...answer.headers });
    const text = answer.body === undefined ? null : JSON.stringify(answer.body);
    return new Response(status === 204 ? null : text, { status, headers: responseHeaders });
  });
  vi.stubGlobal('fetch', fetchStub);
  return seen;
}

import { sleep } from '@/lib/sleep';
import { useSessionStore } from '@/stores/session';

export interface FieldError {
  field: string;
  message: string;
}

/** An API failure, read from the gateway's application/problem+json body. */
export class ApiError extends Error {
  status: number;
  title: string;
  detail?: string;
  requestId?: string;
  errors?: FieldError[];
  type?: string;
  /** Seconds the server asked to wait before asking again (503 and 429 answers). */
  retryAfterSeconds?: number;

  constructor(init: {
    status: number;
    title: string;
    detail?: string;
    requestId?: string;
    errors?: FieldError[];
    type?: string;
    retryAfterSeconds?: number;
  }) {
    super(init.detail ? `${init.title}: ${init.detail}` : init.title);
    this.name = 'ApiError';
    this.status = init.status;
    this.title = init.title;
    this.detail = init.detail;
    this.requestId = init.requestId;
    this.errors = init.errors;
    this.type = init.type;
    this.retryAfterSeconds = init.retryAfterSeconds;
  }
}

export interface ApiResult<T> {
  data: T;
  meta: Record<string, unknown>;
}

export type ApiInit = RequestInit & { json?: unknown };

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** A read refused with 503 or 429 and a short Retry-After is asked again, at most this often. */
export const READ_RETRIES = 2;
/** Longer waits than this are left to the user: the page shows the error instead of hanging. */
export const MAX_RETRY_WAIT_SECONDS = 5;

/** Retry-After in seconds (delta-seconds only, as the platform sends it), or undefined. */
export function retryAfterSeconds(response: Response): number | undefined {
  const value = response.headers.get('Retry-After');
  if (value === null || !/^\d{1,6}$/.test(value.trim())) return undefined;
  return Number(value.trim());
}

/** Headers a state-changing request made without `apiFetch` (e.g. XMLHttpRequest) must carry. */
export function csrfHeaders(): Record<string, string> {
  const token = useSessionStore.getState().csrfToken;
  return token ? { 'X-CSRF-Token': token } : {};
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function asString(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function readFieldErrors(value: unknown): FieldError[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const errors: FieldError[] = [];
  for (const item of value) {
    if (isRecord(item)) {
      errors.push({
        field: asString(item.field) ?? asString(item.loc) ?? '',
        message: asString(item.message) ?? asString(item.msg) ?? String(item.message ?? ''),
      });
    }
  }
  return errors.length > 0 ? errors : undefined;
}

/** Builds an ApiError from any failed response body (problem+json or not). */
export function problemToError(status: number, body: unknown, headerRequestId?: string | null): ApiError {
  const problem = isRecord(body) ? body : {};
  return new ApiError({
    status,
    title: asString(problem.title) ?? (status === 0 ? 'Network error' : `Request failed (HTTP ${status})`),
    detail: asString(problem.detail),
    requestId: asString(problem.request_id) ?? headerRequestId ?? undefined,
    errors: readFieldErrors(problem.errors),
    type: asString(problem.type),
  });
}

async function readBody(response: Response): Promise<unknown> {
  if (response.status === 204) return undefined;
  const text = await response.text();
  if (text === '') return undefined;
  const contentType = response.headers.get('content-type') ?? '';
  if (contentType.includes('json')) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  }
  return text;
}

/**
 * Calls the gateway with the session cookie. Unwraps the `{success, data, meta}` envelope,
 * throws ApiError for problem+json answers, and on 401 ends the session so the login page shows.
 */
export async function apiFetch<T>(path: string, init: ApiInit = {}): Promise<ApiResult<T>> {
  const { json, headers: initHeaders, ...rest } = init;
  const method = (rest.method ?? (json !== undefined ? 'POST' : 'GET')).toUpperCase();
  const headers = new Headers(initHeaders);
  if (!headers.has('Accept')) headers.set('Accept', 'application/json');
  let body = rest.body;
  if (json !== undefined) {
    headers.set('Content-Type', 'application/json');
    body = JSON.stringify(json);
  }
  if (!SAFE_METHODS.has(method)) {
    for (const [name, value] of Object.entries(csrfHeaders())) headers.set(name, value);
  }

  let response: Response;
  let wait: number | undefined;
  for (let attempt = 0; ; attempt += 1) {
    try {
      response = await fetch(path, { ...rest, method, headers, body, credentials: 'same-origin' });
    } catch (cause) {
      if (cause instanceof DOMException && cause.name === 'AbortError') throw cause;
      throw new ApiError({
        status: 0,
        title: 'Network error',
        detail: 'The server could not be reached. Check your connection and try again.',
      });
    }
    // An overloaded platform answers at once with 503 (or 429) and the wait it asks for: a read
    // waits that long and asks again, rather than failing the page or retrying at once.
    wait = retryAfterSeconds(response);
    if (
      !SAFE_METHODS.has(method) ||
      (response.status !== 503 && response.status !== 429) ||
      wait === undefined ||
      wait > MAX_RETRY_WAIT_SECONDS ||
      attempt >= READ_RETRIES
    ) {
      break;
    }
    await response.body?.cancel();
    const signal = rest.signal ?? new AbortController().signal;
    await sleep(wait * 1000, signal);
    if (signal.aborted) throw new DOMException('The request was cancelled.', 'AbortError');
  }

  const payload = await readBody(response);
  if (!response.ok) {
    if (response.status === 401) {
      const session = useSessionStore.getState();
      // A failed sign-in is not an ended session: only a signed-in user gets the notice.
      session.clearSession(
        session.status === 'authenticated' ? 'Your session has ended. Please sign in again.' : null,
      );
    }
    const error = problemToError(response.status, payload, response.headers.get('X-Request-ID'));
    error.retryAfterSeconds = wait;
    throw error;
  }
  if (isRecord(payload) && 'success' in payload) {
    return {
      data: payload.data as T,
      meta: isRecord(payload.meta) ? payload.meta : {},
    };
  }
  return { data: payload as T, meta: {} };
}

/** Builds a query string from defined, non-empty values. */
export function toQuery(params: Record<string, string | number | boolean | null | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '') continue;
    search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

import { afterEach, describe, expect, it, vi } from 'vitest';
import { useSessionStore } from '@/stores/session';
import { ok, problem, stubFetch } from '@/test/fetch';
import { ApiError, apiFetch, csrfHeaders, MAX_RETRY_WAIT_SECONDS, READ_RETRIES, toQuery } from './api';

afterEach(() => {
  vi.unstubAllGlobals();
  vi.useRealTimers();
});

describe('apiFetch', () => {
  it('unwraps the envelope and sends the cookie', async () => {
    const seen = stubFetch({ '/api/things': ok([{ id: 1 }], { total: 1 }) });
    const result = await apiFetch<{ id: number }[]>('/api/things');
    expect(result).toEqual({ data: [{ id: 1 }], meta: { total: 1 } });
    expect(seen[0]?.method).toBe('GET');
    expect(seen[0]?.headers.get('X-CSRF-Token')).toBeNull();
  });

  it('adds the CSRF token and JSON body to state-changing requests', async () => {
    useSessionStore.getState().setSession({ username: 'ana', permissions: ['write'] }, 'tok-123');
    const seen = stubFetch({ 'PATCH /api/things': ok({ id: 1 }) });
    await apiFetch('/api/things/1', { method: 'PATCH', json: { name: 'x' } });
    expect(seen[0]?.headers.get('X-CSRF-Token')).toBe('tok-123');
    expect(seen[0]?.headers.get('Content-Type')).toBe('application/json');
    expect(seen[0]?.body).toEqual({ name: 'x' });
    expect(csrfHeaders()).toEqual({ 'X-CSRF-Token': 'tok-123' });
  });

  it('throws an ApiError carrying the problem details', async () => {
    stubFetch({
      '/api/things': problem(422, 'Invalid request', {
        detail: 'limit is too large',
        request_id: 'req-9',
        errors: [{ field: 'limit', message: 'must be at most 100' }],
      }),
    });
    const error = await apiFetch('/api/things').catch((cause: unknown) => cause);
    expect(error).toBeInstanceOf(ApiError);
    const apiError = error as ApiError;
    expect(apiError.status).toBe(422);
    expect(apiError.title).toBe('Invalid request');
    expect(apiError.detail).toBe('limit is too large');
    expect(apiError.requestId).toBe('req-9');
    expect(apiError.errors).toEqual([{ field: 'limit', message: 'must be at most 100' }]);
  });

  it('ends a live session on 401 so the login page shows', async () => {
    useSessionStore.getState().setSession({ username: 'ana', permissions: [] }, 'tok');
    stubFetch({ '/api/things': problem(401, 'Unauthorized') });
    await expect(apiFetch('/api/things')).rejects.toMatchObject({ status: 401 });
    const state = useSessionStore.getState();
    expect(state.status).toBe('anonymous');
    expect(state.user).toBeNull();
    expect(state.csrfToken).toBeNull();
    expect(state.notice).toMatch(/session has ended/i);
  });

  it('reports an unreachable server as a network error', async () => {
    vi.stubGlobal('fetch', vi.fn(() => Promise.reject(new TypeError('Failed to fetch'))));
    await expect(apiFetch('/api/things')).rejects.toMatchObject({ status: 0, title: 'Network error' });
  });

  it('treats a 204 as no data', async () => {
    stubFetch({ '/api/auth/logout': { status: 204 } });
    await expect(apiFetch('/api/auth/logout', { method: 'POST' })).resolves.toEqual({ data: undefined, meta: {} });
  });
});

describe('toQuery', () => {
  it('drops empty values and encodes the rest', () => {
    expect(toQuery({ a: 'x y', b: '', c: undefined, d: 0, e: null })).toBe('?a=x+y&d=0');
    expect(toQuery({})).toBe('');
  });
});

describe('apiFetch under overload', () => {
  function overloaded(seconds: string) {
    return { ...problem(503, 'Service Unavailable'), headers: { 'Content-Type': 'application/problem+json', 'Retry-After': seconds } };
  }

  it('waits the Retry-After of a refused read, then asks again', async () => {
    vi.useFakeTimers();
    let calls = 0;
    const seen = stubFetch({ '/api/things': () => (++calls === 1 ? overloaded('1') : ok([1])) });
    const pending = apiFetch<number[]>('/api/things');
    await vi.advanceTimersByTimeAsync(999);
    expect(seen).toHaveLength(1); // not asked again before the wait is over
    await vi.advanceTimersByTimeAsync(1);
    await expect(pending).resolves.toEqual({ data: [1], meta: {} });
    expect(seen).toHaveLength(2);
  });

  it(`gives up after ${READ_RETRIES} retries and reports the wait`, async () => {
    vi.useFakeTimers();
    const seen = stubFetch({ '/api/things': overloaded('1') });
    const pending = apiFetch('/api/things').catch((cause: unknown) => cause);
    await vi.advanceTimersByTimeAsync(READ_RETRIES * 1000);
    const error = (await pending) as ApiError;
    expect(error.status).toBe(503);
    expect(error.retryAfterSeconds).toBe(1);
    expect(seen).toHaveLength(1 + READ_RETRIES);
  });

  it('never repeats a change, and leaves a long wait to the user', async () => {
    const seen = stubFetch({ '/api/things': overloaded('1'), '/api/slow': overloaded(String(MAX_RETRY_WAIT_SECONDS + 1)) });
    await expect(apiFetch('/api/things', { method: 'POST', json: {} })).rejects.toMatchObject({ status: 503, retryAfterSeconds: 1 });
    await expect(apiFetch('/api/slow')).rejects.toMatchObject({ status: 503, retryAfterSeconds: MAX_RETRY_WAIT_SECONDS + 1 });
    expect(seen.map((request) => request.url.pathname)).toEqual(['/api/things', '/api/slow']);
  });

  it('stops waiting as soon as the caller cancels', async () => {
    vi.useFakeTimers();
    const seen = stubFetch({ '/api/things': overloaded('2') });
    const controller = new AbortController();
    const pending = apiFetch('/api/things', { signal: controller.signal }).catch((cause: unknown) => cause);
    await vi.advanceTimersByTimeAsync(500);
    controller.abort();
    const error = await pending;
    expect(error).toBeInstanceOf(DOMException);
    expect((error as DOMException).name).toBe('AbortError');
    expect(seen).toHaveLength(1);
  });
});

import { describe, expect, it } from 'vitest';
import { ApiError } from '@/lib/api';
import { retryable } from './queryClient';

describe('retryable', () => {
  const failure = (status: number, retryAfterSeconds?: number) =>
    new ApiError({ status, title: 'failed', retryAfterSeconds });

  it('retries network errors, 5xx and 429 twice at most', () => {
    for (const status of [0, 429, 500, 502, 503]) {
      expect(retryable(0, failure(status))).toBe(true);
      expect(retryable(1, failure(status))).toBe(true);
      expect(retryable(2, failure(status))).toBe(false);
    }
    expect(retryable(0, new TypeError('boom'))).toBe(true);
  });

  it('never retries what a second try cannot change', () => {
    for (const status of [400, 401, 403, 404, 409, 422]) expect(retryable(0, failure(status))).toBe(false);
  });

  it('leaves an answer with Retry-After to apiFetch, which honours the wait', () => {
    expect(retryable(0, failure(503, 1))).toBe(false);
    expect(retryable(0, failure(429, 30))).toBe(false);
  });
});

import { QueryClient } from '@tanstack/react-query';
import { ApiError } from '@/lib/api';

/**
 * Whether a failed read may pass on a second try: network errors, 5xx and 429, unless the server
 * said how long to wait (Retry-After): apiFetch has waited and asked again already, or the wait
 * is too long to spend behind a spinner.
 */
export function retryable(failures: number, error: unknown): boolean {
  if (failures >= 2) return false;
  if (!(error instanceof ApiError)) return true;
  if (error.retryAfterSeconds !== undefined) return false;
  return error.status === 0 || error.status === 429 || error.status >= 500;
}

/** Server state: retry only what may pass on a second try. */
export function createQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: { staleTime: 30_000, refetchOnWindowFocus: false, retry: retryable },
      mutations: { retry: false },
    },
  });
}

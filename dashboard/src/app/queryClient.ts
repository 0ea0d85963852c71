import { QueryClient } from '@tanstack/react-query';
import { ApiError } from '@/lib/api';

/** Server state: retry only what may pass on a second try (network errors, 5xx, 429). */
export function createQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: {
        staleTime: 30_000,
        refetchOnWindowFocus: false,
        retry: (failures, error) =>
          failures < 2 && (!(error instanceof ApiError) || error.status === 0 || error.status === 429 || error.status >= 500),
      },
      mutations: { retry: false },
    },
  });
}

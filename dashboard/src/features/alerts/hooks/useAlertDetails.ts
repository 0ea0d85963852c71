import { useQuery } from '@tanstack/react-query';

import { getAlert } from '../api/alerts';
import { useAlertsStore } from '../stores/AlertsStoreProvider';
import type { AlertWithHistory } from '../types';

export interface AlertDetailsResult {
  details: AlertWithHistory | null;
  loading: boolean;
  error: unknown;
}

/** One alert with its history; reloads whenever the live feed reports a change to it. */
export function useAlertDetails(alertId: string): AlertDetailsResult {
  const revision = useAlertsStore((state) => state.revisions[alertId] ?? 0);
  const details = useQuery({
    // The feed's revision is part of the key, so every reported change is a fresh load.
    queryKey: ['alerts', 'details', alertId, revision],
    queryFn: () => getAlert(alertId),
    // While a changed alert reloads, keep showing it; never show another alert in its place.
    placeholderData: (previous) => (previous?.id === alertId ? previous : undefined),
  });
  return { details: details.data ?? null, loading: details.isFetching, error: details.error };
}

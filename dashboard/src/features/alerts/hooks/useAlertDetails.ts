import { useEffect, useState } from 'react';

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
  const [details, setDetails] = useState<AlertWithHistory | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    let current = true;
    setLoading(true);
    getAlert(alertId).then(
      (found) => {
        if (!current) return;
        setDetails(found);
        setError(null);
        setLoading(false);
      },
      (failure: unknown) => {
        if (!current) return;
        setError(failure);
        setLoading(false);
      },
    );
    return () => {
      current = false;
    };
  }, [alertId, revision]);

  return { details: details?.id === alertId ? details : null, loading, error };
}

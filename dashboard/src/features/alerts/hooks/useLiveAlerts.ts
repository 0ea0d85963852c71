import { useEffect } from 'react';

import { ALERT_STREAM_URL } from '../api/alerts';
import { openLiveStream } from '../api/event-stream';
import { useAlertsStoreApi } from '../stores/AlertsStoreProvider';
import type { Alert } from '../types';

const ALERT_EVENTS = new Set([
  'alert.raised',
  'alert.updated',
  'alert.acknowledged',
  'alert.resolved',
  'alert.commented',
]);

function parseAlert(data: string): Alert | undefined {
  try {
    const value: unknown = JSON.parse(data);
    if (typeof value === 'object' && value !== null && 'id' in value && 'status' in value) {
      return value as Alert;
    }
  } catch {
    // a malformed frame is skipped; the next reload corrects the list
  }
  return undefined;
}

/** Loads the view's alerts and keeps them current from the live feed while mounted. */
export function useLiveAlerts(): void {
  const store = useAlertsStoreApi();

  useEffect(() => {
    void store.getState().load();
    const stream = openLiveStream({
      url: ALERT_STREAM_URL,
      onEvent: (event) => {
        if (!ALERT_EVENTS.has(event.event)) return;
        const alert = parseAlert(event.data);
        if (alert) store.getState().merge(alert);
      },
      onStatus: (status) => {
        store.getState().setStream(status);
        // A fresh stream starts at "now": what changed since the list was read would be missed,
        // so read the list again (changes arriving meanwhile are kept by the store).
        if (status.state === 'open' && !status.resumed) void store.getState().load();
      },
    });
    return () => stream.close();
  }, [store]);
}

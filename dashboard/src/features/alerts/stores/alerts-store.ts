/**
 * The alert list a view shows: loaded from `GET /api/alerts`, then kept current by the live feed.
 *
 * One store per view (the overview's compact feed and the alerts page filter differently), made
 * by `createAlertsStore` and handed down through `AlertsStoreProvider`.
 */
import { createStore } from 'zustand/vanilla';

import { listAlerts } from '../api/alerts';
import type { StreamStatus } from '../api/event-stream';
import type { Alert, AlertFilters } from '../types';

export interface AlertsState {
  /** Newest first, as the API orders them (`starts_at` descending, then id). */
  alerts: Alert[];
  total: number;
  filters: AlertFilters;
  limit: number;
  loading: boolean;
  error: unknown;
  stream: StreamStatus;
  /** Bumped for an alert on every change the feed reports, so an open detail view reloads. */
  revisions: Record<string, number>;
  setFilters: (filters: AlertFilters) => void;
  load: () => Promise<void>;
  /** Merges one changed alert (from the live feed or an action's answer) into the list by id. */
  merge: (alert: Alert) => void;
  setStream: (stream: StreamStatus) => void;
}

export const NO_FILTERS: AlertFilters = { severity: [], status: [], source: '' };

export function matchesFilters(alert: Alert, filters: AlertFilters): boolean {
  if (filters.severity.length > 0 && !filters.severity.includes(alert.severity)) return false;
  if (filters.status.length > 0 && !filters.status.includes(alert.status)) return false;
  const source = filters.source.trim();
  return source === '' || alert.source === source;
}

function newestFirst(a: Alert, b: Alert): number {
  const byStart = Date.parse(b.starts_at) - Date.parse(a.starts_at);
  if (byStart !== 0) return byStart;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

interface AlertList {
  alerts: Alert[];
  total: number;
}

/** The list with one changed alert merged in by id, as the filters and the limit allow. */
export function mergeAlert(
  list: AlertList,
  alert: Alert,
  filters: AlertFilters,
  limit: number,
): AlertList {
  const known = list.alerts.some((a) => a.id === alert.id);
  const others = list.alerts.filter((a) => a.id !== alert.id);
  if (!matchesFilters(alert, filters)) {
    return { alerts: others, total: known ? Math.max(0, list.total - 1) : list.total };
  }
  return {
    alerts: [...others, alert].sort(newestFirst).slice(0, limit),
    total: known ? list.total : list.total + 1,
  };
}

function notOlder(change: Alert, listed: Alert | undefined): boolean {
  return listed === undefined || Date.parse(change.updated_at) >= Date.parse(listed.updated_at);
}

export type AlertsStore = ReturnType<typeof createAlertsStore>;

export function createAlertsStore(initial: { filters?: AlertFilters; limit?: number } = {}) {
  let latestLoad = 0;
  // Changes that arrive while a load is in flight: the loaded page may predate them.
  let arrivedDuringLoad: Alert[] = [];
  return createStore<AlertsState>()((set, get) => ({
    alerts: [],
    total: 0,
    filters: initial.filters ?? NO_FILTERS,
    limit: initial.limit ?? 100,
    loading: false,
    error: null,
    stream: { state: 'connecting' },
    revisions: {},

    setFilters: (filters) => {
      set({ filters });
      void get().load();
    },

    load: async () => {
      latestLoad += 1;
      const thisLoad = latestLoad;
      arrivedDuringLoad = [];
      set({ loading: true, error: null });
      const { filters, limit } = get();
      try {
        const page = await listAlerts(filters, limit);
        // A slower answer to older filters must not overwrite a newer one.
        if (thisLoad !== latestLoad) return;
        let list: AlertList = { alerts: page.alerts, total: page.total };
        for (const change of arrivedDuringLoad) {
          if (notOlder(change, list.alerts.find((a) => a.id === change.id))) {
            list = mergeAlert(list, change, filters, limit);
          }
        }
        arrivedDuringLoad = [];
        set({ ...list, loading: false });
      } catch (error) {
        if (thisLoad !== latestLoad) return;
        set({ error, loading: false });
      }
    },

    merge: (alert) => {
      const { alerts, total, filters, limit, revisions, loading } = get();
      if (loading) arrivedDuringLoad.push(alert);
      set({
        ...mergeAlert({ alerts, total }, alert, filters, limit),
        revisions: { ...revisions, [alert.id]: (revisions[alert.id] ?? 0) + 1 },
      });
    },

    setStream: (stream) => set({ stream }),
  }));
}

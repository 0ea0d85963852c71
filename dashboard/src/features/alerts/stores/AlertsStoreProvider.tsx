import { createContext, useContext, useState, type ReactNode } from 'react';
import { useStore } from 'zustand';

import type { AlertFilters } from '../types';
import { createAlertsStore, type AlertsState, type AlertsStore } from './alerts-store';

const AlertsStoreContext = createContext<AlertsStore | null>(null);

export interface AlertsStoreProviderProps {
  filters?: AlertFilters;
  limit?: number;
  children: ReactNode;
}

/** Gives the view below it its own alert list. */
export function AlertsStoreProvider({ filters, limit, children }: AlertsStoreProviderProps) {
  const [store] = useState(() => createAlertsStore({ filters, limit }));
  return <AlertsStoreContext.Provider value={store}>{children}</AlertsStoreContext.Provider>;
}

export function useAlertsStoreApi(): AlertsStore {
  const store = useContext(AlertsStoreContext);
  if (store === null) throw new Error('useAlertsStore needs an AlertsStoreProvider above it');
  return store;
}

export function useAlertsStore<T>(select: (state: AlertsState) => T): T {
  return useStore(useAlertsStoreApi(), select);
}

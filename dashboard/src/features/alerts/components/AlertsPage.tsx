import { useEffect, useRef } from 'react';
import { useSearchParams } from 'react-router';

import { EmptyState, ErrorMessage, Loading } from '@/components';

import { useLiveAlerts } from '../hooks/useLiveAlerts';
import { AlertsStoreProvider, useAlertsStore } from '../stores/AlertsStoreProvider';
import { AlertDetails } from './AlertDetails';
import { AlertFiltersForm } from './AlertFiltersForm';
import { AlertTable, detailsButtonId } from './AlertTable';
import { LiveStatus } from './LiveStatus';
import './alerts.css';

const PAGE_LIMIT = 100;

function AlertsView() {
  useLiveAlerts();
  const alerts = useAlertsStore((s) => s.alerts);
  const total = useAlertsStore((s) => s.total);
  const filters = useAlertsStore((s) => s.filters);
  const setFilters = useAlertsStore((s) => s.setFilters);
  const loading = useAlertsStore((s) => s.loading);
  const error = useAlertsStore((s) => s.error);
  const stream = useAlertsStore((s) => s.stream);
  // The open alert lives in the URL (?alert=<id>), so the overview can link straight to it.
  const [params, setParams] = useSearchParams();
  const selectedId = params.get('alert');
  const closedId = useRef<string | null>(null);

  function select(id: string | null): void {
    if (id === null) closedId.current = selectedId;
    setParams(
      (current) => {
        const next = new URLSearchParams(current);
        if (id === null) next.delete('alert');
        else next.set('alert', id);
        return next;
      },
      { replace: true },
    );
  }

  useEffect(() => {
    // Back to the row's button after closing, so keyboard users keep their place.
    if (selectedId !== null || closedId.current === null) return;
    document.getElementById(detailsButtonId(closedId.current))?.focus();
    closedId.current = null;
  }, [selectedId]);

  return (
    <div className="alerts-page">
      <h1>Alerts</h1>
      <LiveStatus stream={stream} />
      <AlertFiltersForm filters={filters} onChange={setFilters} />
      {error !== null && <ErrorMessage error={error} context="Could not load alerts" />}
      <div className={selectedId === null ? 'alerts-page__body' : 'alerts-page__body has-detail'}>
        <div className="alerts-page__list">
          {loading && alerts.length === 0 ? (
            <Loading label="Loading alerts…" />
          ) : alerts.length === 0 ? (
            error === null && (
              <EmptyState title="No alerts match these filters">
                New alerts appear here as soon as they fire.
              </EmptyState>
            )
          ) : (
            <>
              <AlertTable alerts={alerts} selectedId={selectedId} onSelect={select} />
              {total > alerts.length && (
                <p>
                  Showing the newest {alerts.length} of {total} alerts; narrow the filters to see
                  the others.
                </p>
              )}
            </>
          )}
        </div>
        {selectedId !== null && (
          <AlertDetails alertId={selectedId} onClose={() => select(null)} />
        )}
      </div>
    </div>
  );
}

/** The alerts page: the live feed with filters and the selected alert's details. No props. */
export function AlertsPage() {
  return (
    <AlertsStoreProvider limit={PAGE_LIMIT}>
      <AlertsView />
    </AlertsStoreProvider>
  );
}

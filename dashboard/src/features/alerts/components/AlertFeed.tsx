import { useId } from 'react';
import { Link } from 'react-router';

import { EmptyState, ErrorMessage, Loading, SeverityBadge, StatusBadge } from '@/components';
import { formatDateTime } from '@/lib/format';

import { useLiveAlerts } from '../hooks/useLiveAlerts';
import { AlertsStoreProvider, useAlertsStore } from '../stores/AlertsStoreProvider';
import type { AlertFilters } from '../types';
import { alertTitle } from './alertTitle';
import { LiveStatus } from './LiveStatus';
import './alerts.css';

const OPEN_ALERTS: AlertFilters = { severity: [], status: ['firing', 'acknowledged'], source: '' };

function OpenAlertList({ allAlertsHref }: { allAlertsHref: string }) {
  useLiveAlerts();
  const titleId = useId();
  const alerts = useAlertsStore((s) => s.alerts);
  const total = useAlertsStore((s) => s.total);
  const loading = useAlertsStore((s) => s.loading);
  const error = useAlertsStore((s) => s.error);
  const stream = useAlertsStore((s) => s.stream);

  return (
    <section className="card alert-feed" aria-labelledby={titleId}>
      <h2 id={titleId}>Open alerts{total > 0 ? ` (${total})` : ''}</h2>
      <LiveStatus stream={stream} />
      {error !== null && <ErrorMessage error={error} context="Could not load alerts" />}
      {loading && alerts.length === 0 ? (
        <Loading label="Loading alerts…" />
      ) : alerts.length === 0 ? (
        error === null && <EmptyState title="No open alerts">All quiet.</EmptyState>
      ) : (
        <ul className="alert-feed__list">
          {alerts.map((alert) => (
            <li key={alert.id} className={`alert-feed__item alert-feed__item--${alert.severity}`}>
              <SeverityBadge severity={alert.severity} />
              <Link
                className="alert-feed__title"
                to={`${allAlertsHref}?alert=${encodeURIComponent(alert.id)}`}
              >
                {alertTitle(alert)}
              </Link>
              <StatusBadge status={alert.status} />
              <time dateTime={alert.starts_at}>{formatDateTime(alert.starts_at)}</time>
            </li>
          ))}
        </ul>
      )}
      <p>
        <Link to={allAlertsHref}>All alerts</Link>
      </p>
    </section>
  );
}

export interface AlertFeedProps {
  /** How many of the newest open alerts to show (at most 100). */
  limit?: number;
  /** Where "All alerts" leads; an alert's title links there with `?alert=<id>`. */
  allAlertsHref?: string;
}

/** The overview's compact live list of firing and acknowledged alerts. */
export function AlertFeed({ limit = 5, allAlertsHref = '/alerts' }: AlertFeedProps) {
  return (
    <AlertsStoreProvider filters={OPEN_ALERTS} limit={Math.min(limit, 100)}>
      <OpenAlertList allAlertsHref={allAlertsHref} />
    </AlertsStoreProvider>
  );
}

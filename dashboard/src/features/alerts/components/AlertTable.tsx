import { SeverityBadge, StatusBadge } from '@/components';
import { formatDateTime } from '@/lib/format';

import type { Alert } from '../types';
import { alertTitle } from './alertTitle';

export function detailsButtonId(alertId: string): string {
  return `alert-details-button-${alertId}`;
}

export interface AlertTableProps {
  alerts: Alert[];
  selectedId: string | null;
  onSelect: (id: string) => void;
}

/** The full feed: one row per alert, newest first; "Details" opens it beside the table. */
export function AlertTable({ alerts, selectedId, onSelect }: AlertTableProps) {
  return (
    <div className="table-wrap">
      <table className="table alerts-table">
        <caption className="visually-hidden">Alerts, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Severity</th>
            <th scope="col">Alert</th>
            <th scope="col">Status</th>
            <th scope="col">Source</th>
            <th scope="col">Started</th>
            <th scope="col">
              <span className="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {alerts.map((alert) => (
            <tr key={alert.id} className={alert.id === selectedId ? 'alerts-table__selected' : undefined}>
              <td>
                <SeverityBadge severity={alert.severity} />
              </td>
              <th scope="row">
                {alertTitle(alert)}
                {alert.suppressed && <span className="alerts-table__muted"> (silenced)</span>}
              </th>
              <td>
                <StatusBadge status={alert.status} />
              </td>
              <td>{alert.source}</td>
              <td>
                <time dateTime={alert.starts_at}>{formatDateTime(alert.starts_at)}</time>
              </td>
              <td>
                <button
                  className="button"
                  id={detailsButtonId(alert.id)}
                  type="button"
                  aria-expanded={alert.id === selectedId}
                  aria-label={`Details of ${alertTitle(alert)}`}
                  onClick={() => onSelect(alert.id)}
                >
                  Details
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

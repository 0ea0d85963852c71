import { useQuery } from '@tanstack/react-query';
import { EmptyState, ErrorMessage, Loading, SeverityBadge, StatusBadge } from '@/components';
import { formatDateTime } from '@/lib/format';
import { fetchResourceAlerts } from '../api/resources';

/** Alerts labelled with this resource's id, newest first. */
export function ResourceAlerts({ resourceId }: { resourceId: string }) {
  const alerts = useQuery({ queryKey: ['resources', 'alerts', resourceId], queryFn: () => fetchResourceAlerts(resourceId) });
  return (
    <section aria-labelledby="resource-alerts-heading">
      <h3 id="resource-alerts-heading">Alerts</h3>
      {alerts.isPending && <Loading label="Loading alerts…" />}
      {alerts.isError && <ErrorMessage error={alerts.error} context="Could not load alerts" />}
      {alerts.data && alerts.data.length === 0 && <EmptyState title="No alerts for this resource" />}
      {alerts.data && alerts.data.length > 0 && (
        <ul className="plain-list">
          {alerts.data.map((alert) => (
            <li key={alert.id}>
              <SeverityBadge severity={alert.severity} /> <StatusBadge status={alert.status} />{' '}
              {alert.annotations.title ?? alert.labels.alertname ?? 'Alert'}
              <div className="muted small">{formatDateTime(alert.starts_at)}</div>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

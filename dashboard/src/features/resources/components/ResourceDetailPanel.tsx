import { useQuery } from '@tanstack/react-query';
import { useEffect, useRef } from 'react';
import { ErrorMessage, Loading, StatusBadge } from '@/components';
import { apiFetch } from '@/lib/api';
import { formatDateTime, formatMoney, formatPercent } from '@/lib/format';
import type { Resource } from '../types';
import { ResourceAlerts } from './ResourceAlerts';
import { ResourceCostHistory } from './ResourceCostHistory';
import { UtilizationHistory } from './UtilizationHistory';

export interface ResourceDetailPanelProps {
  resourceId: string;
  onClose: () => void;
}

/** One resource: its fields, utilisation history, cost over time and alerts. */
export function ResourceDetailPanel({ resourceId, onClose }: ResourceDetailPanelProps) {
  const resource = useQuery({
    queryKey: ['resources', 'one', resourceId],
    queryFn: async () => (await apiFetch<Resource>(`/api/resources/${encodeURIComponent(resourceId)}`)).data,
  });
  const headingRef = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    if (resource.data) headingRef.current?.focus();
  }, [resource.data]);

  return (
    <aside className="card detail-panel" aria-labelledby="resource-detail-heading">
      <div className="detail-panel__head">
        <h2 id="resource-detail-heading" ref={headingRef} tabIndex={-1}>
          {resource.data?.name ?? 'Resource'}
        </h2>
        <button type="button" className="button" onClick={onClose}>
          Close details
        </button>
      </div>
      {resource.isPending && <Loading label="Loading resource…" />}
      {resource.isError && <ErrorMessage error={resource.error} context="Could not load the resource" />}
      {resource.data && (
        <>
          <dl className="facts">
            <dt>Status</dt>
            <dd>
              <StatusBadge status={resource.data.status} />
            </dd>
            <dt>External id</dt>
            <dd className="mono">{resource.data.external_id}</dd>
            <dt>Provider</dt>
            <dd>
              {resource.data.provider} · {resource.data.region} · {resource.data.account}
            </dd>
            <dt>Type</dt>
            <dd>{resource.data.type}</dd>
            <dt>Team / owner</dt>
            <dd>
              {resource.data.team ?? '—'} / {resource.data.owner ?? '—'}
            </dd>
            <dt>Cost per hour</dt>
            <dd>{formatMoney(resource.data.hourly_cost, resource.data.currency)}</dd>
            <dt>CPU / memory now</dt>
            <dd>
              {formatPercent(resource.data.cpu_utilization)} / {formatPercent(resource.data.memory_utilization)}
            </dd>
            <dt>Updated</dt>
            <dd>{formatDateTime(resource.data.updated_at)}</dd>
            {Object.keys(resource.data.tags).length > 0 && (
              <>
                <dt>Tags</dt>
                <dd>
                  {Object.entries(resource.data.tags).map(([key, value]) => (
                    <span key={key} className="tag">
                      {key}={value}
                    </span>
                  ))}
                </dd>
              </>
            )}
          </dl>
          <UtilizationHistory resourceId={resourceId} />
          <ResourceCostHistory externalId={resource.data.external_id} />
          <ResourceAlerts resourceId={resourceId} />
        </>
      )}
    </aside>
  );
}

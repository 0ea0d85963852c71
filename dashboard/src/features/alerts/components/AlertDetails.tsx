import { Fragment, useEffect, useRef, useState } from 'react';

import { ErrorMessage, Loading, SeverityBadge, StatusBadge } from '@/components';
import { formatDateTime } from '@/lib/format';
import { hasPermission, useSessionStore } from '@/stores/session';

import { useAlertDetails } from '../hooks/useAlertDetails';
import { useAlertsStore } from '../stores/AlertsStoreProvider';
import type { Alert, Silence } from '../types';
import { AlertActions } from './AlertActions';
import { AlertComments } from './AlertComments';
import { AlertHistory } from './AlertHistory';
import { alertTitle } from './alertTitle';
import { SilenceFromAlertForm } from './SilenceFromAlertForm';

function KeyValues({ label, values }: { label: string; values: Record<string, string> }) {
  const names = Object.keys(values).sort();
  if (names.length === 0) return null;
  return (
    <>
      <h3>{label}</h3>
      <dl className="facts">
        {names.map((name) => (
          <Fragment key={name}>
            <dt>{name}</dt>
            <dd>{values[name]}</dd>
          </Fragment>
        ))}
      </dl>
    </>
  );
}

export interface AlertDetailsProps {
  alertId: string;
  onClose: () => void;
}

/** One alert in full: labels, actions, comments, history, and a silence made from its labels. */
export function AlertDetails({ alertId, onClose }: AlertDetailsProps) {
  const { details, loading, error } = useAlertDetails(alertId);
  const merge = useAlertsStore((state) => state.merge);
  const canWrite = useSessionStore((state) => hasPermission(state.user, 'write'));
  const [silencing, setSilencing] = useState(false);
  const [silence, setSilence] = useState<Silence | null>(null);
  const heading = useRef<HTMLHeadingElement>(null);

  useEffect(() => {
    setSilencing(false);
    setSilence(null);
  }, [alertId]);

  const title = details ? alertTitle(details) : null;
  useEffect(() => {
    if (title !== null) heading.current?.focus(); // keyboard users land on what they opened
  }, [alertId, title]);

  const changed = (alert: Alert): void => merge(alert);

  return (
    <section
      className="card alert-details"
      aria-label="Alert details"
      onKeyDown={(e) => {
        if (e.key === 'Escape') onClose();
      }}
    >
      <button type="button" className="button alert-details__close" onClick={onClose}>
        Close details
      </button>
      {error !== null && <ErrorMessage error={error} context="Could not load the alert" />}
      {details === null ? (
        loading && <Loading label="Loading the alert…" />
      ) : (
        <>
          <h2 ref={heading} tabIndex={-1}>
            {title}
          </h2>
          <p className="alert-details__state">
            <SeverityBadge severity={details.severity} /> <StatusBadge status={details.status} />
            {details.suppressed && ' silenced'} · from {details.source} · since{' '}
            <time dateTime={details.starts_at}>{formatDateTime(details.starts_at)}</time>
          </p>
          {details.generator_url && (
            <p>
              <a href={details.generator_url} rel="noreferrer noopener" target="_blank">
                Open the source of this alert
              </a>
            </p>
          )}
          <KeyValues label="Labels" values={details.labels} />
          <KeyValues label="Annotations" values={details.annotations} />
          {canWrite ? (
            <>
              <AlertActions alert={details} onChanged={changed} />
              {silence && (
                <p role="status">
                  Silence created; it mutes matching alerts until {formatDateTime(silence.ends_at)}.
                </p>
              )}
              {silencing ? (
                <SilenceFromAlertForm
                  alert={details}
                  onCancel={() => setSilencing(false)}
                  onCreated={(created) => {
                    setSilence(created);
                    setSilencing(false);
                  }}
                />
              ) : (
                <button className="button" type="button" onClick={() => setSilencing(true)}>
                  Silence alerts like this…
                </button>
              )}
              <AlertComments alert={details} history={details.history} onCommented={changed} />
            </>
          ) : (
            <>
              <p role="note">
                Acknowledging, resolving, commenting and silencing need the write permission.
              </p>
              <AlertComments alert={details} history={details.history} />
            </>
          )}
          <AlertHistory history={details.history} />
        </>
      )}
    </section>
  );
}

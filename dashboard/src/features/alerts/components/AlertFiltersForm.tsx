import { useId, useState, type FormEvent } from 'react';

import { ALERT_STATUSES, SEVERITIES, type AlertFilters } from '../types';

export interface AlertFiltersFormProps {
  filters: AlertFilters;
  onChange: (filters: AlertFilters) => void;
}

function toggled<T>(values: T[], value: T, on: boolean): T[] {
  return on ? [...values, value] : values.filter((v) => v !== value);
}

/** Severity and status apply as they are ticked; the source applies on submit. */
export function AlertFiltersForm({ filters, onChange }: AlertFiltersFormProps) {
  const [source, setSource] = useState(filters.source);
  const sourceId = useId();

  function submit(event: FormEvent<HTMLFormElement>): void {
    event.preventDefault();
    onChange({ ...filters, source });
  }

  return (
    <form className="alerts-filters" aria-label="Filter alerts" onSubmit={submit}>
      <fieldset>
        <legend>Severity</legend>
        {SEVERITIES.map((severity) => (
          <label key={severity}>
            <input
              type="checkbox"
              checked={filters.severity.includes(severity)}
              onChange={(e) =>
                onChange({ ...filters, severity: toggled(filters.severity, severity, e.target.checked) })
              }
            />
            {severity}
          </label>
        ))}
      </fieldset>
      <fieldset>
        <legend>Status</legend>
        {ALERT_STATUSES.map((status) => (
          <label key={status}>
            <input
              type="checkbox"
              checked={filters.status.includes(status)}
              onChange={(e) =>
                onChange({ ...filters, status: toggled(filters.status, status, e.target.checked) })
              }
            />
            {status}
          </label>
        ))}
      </fieldset>
      <div className="alerts-filters__source">
        <label htmlFor={sourceId}>Source</label>
        <input
          id={sourceId}
          type="text"
          value={source}
          placeholder="e.g. alertmanager"
          onChange={(e) => setSource(e.target.value)}
        />
        <button className="button" type="submit">Apply source</button>
      </div>
    </form>
  );
}

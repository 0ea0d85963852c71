import { useId, useState, type FormEvent } from 'react';

import { ErrorMessage } from '@/components';

import { createSilence } from '../api/alerts';
import type { Alert, Matcher, Silence } from '../types';
import { alertTitle } from './alertTitle';

const OPERATORS = ['=', '!=', '=~', '!~'] as const;
type Operator = (typeof OPERATORS)[number];

export const SILENCE_DURATIONS = [
  { hours: 1, label: '1 hour' },
  { hours: 2, label: '2 hours' },
  { hours: 4, label: '4 hours' },
  { hours: 8, label: '8 hours' },
  { hours: 24, label: '1 day' },
  { hours: 72, label: '3 days' },
  { hours: 168, label: '1 week' },
] as const;

interface MatcherRow {
  name: string;
  value: string;
  operator: Operator;
  included: boolean;
}

function toMatcher(row: MatcherRow): Matcher {
  return {
    name: row.name,
    value: row.value,
    isRegex: row.operator.includes('~'),
    isEqual: row.operator.startsWith('='),
  };
}

export interface SilenceFromAlertFormProps {
  alert: Alert;
  onCreated: (silence: Silence) => void;
  onCancel: () => void;
}

/** A silence prefilled with one equality matcher per label of the alert, for a chosen duration. */
export function SilenceFromAlertForm({ alert, onCreated, onCancel }: SilenceFromAlertFormProps) {
  const formId = useId();
  const [rows, setRows] = useState<MatcherRow[]>(() =>
    Object.keys(alert.labels)
      .sort()
      .map((name) => ({ name, value: alert.labels[name] ?? '', operator: '=', included: true })),
  );
  const [hours, setHours] = useState(2);
  const [comment, setComment] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  function update(index: number, change: Partial<MatcherRow>): void {
    setRows((current) => current.map((row, i) => (i === index ? { ...row, ...change } : row)));
  }

  async function submit(event: FormEvent<HTMLFormElement>): Promise<void> {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const silence = await createSilence({
        matchers: rows.filter((row) => row.included).map(toMatcher),
        endsAt: new Date(Date.now() + hours * 3_600_000).toISOString(),
        comment: comment.trim(),
      });
      onCreated(silence);
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  }

  const nothingMatched = rows.every((row) => !row.included);
  return (
    <form
      className="silence-form"
      aria-labelledby={`${formId}-title`}
      onSubmit={(e) => void submit(e)}
    >
      <h3 id={`${formId}-title`}>Silence alerts like “{alertTitle(alert)}”</h3>
      <fieldset>
        <legend>Matchers (from the alert’s labels)</legend>
        {rows.map((row, index) => (
          <div className="silence-form__matcher" key={row.name}>
            <input
              id={`${formId}-use-${index}`}
              type="checkbox"
              checked={row.included}
              onChange={(e) => update(index, { included: e.target.checked })}
            />
            <label htmlFor={`${formId}-use-${index}`}>Match {row.name}</label>
            <label className="visually-hidden" htmlFor={`${formId}-op-${index}`}>
              Operator for {row.name}
            </label>
            <select
              id={`${formId}-op-${index}`}
              value={row.operator}
              disabled={!row.included}
              onChange={(e) => update(index, { operator: e.target.value as Operator })}
            >
              {OPERATORS.map((op) => (
                <option key={op} value={op}>
                  {op}
                </option>
              ))}
            </select>
            <label className="visually-hidden" htmlFor={`${formId}-value-${index}`}>
              Value for {row.name}
            </label>
            <input
              id={`${formId}-value-${index}`}
              type="text"
              value={row.value}
              disabled={!row.included}
              onChange={(e) => update(index, { value: e.target.value })}
            />
          </div>
        ))}
      </fieldset>
      <label htmlFor={`${formId}-duration`}>Duration</label>
      <select
        id={`${formId}-duration`}
        value={hours}
        onChange={(e) => setHours(Number(e.target.value))}
      >
        {SILENCE_DURATIONS.map((d) => (
          <option key={d.hours} value={d.hours}>
            {d.label}
          </option>
        ))}
      </select>
      <label htmlFor={`${formId}-comment`}>Why (comment)</label>
      <textarea
        id={`${formId}-comment`}
        required
        maxLength={4096}
        rows={2}
        value={comment}
        onChange={(e) => setComment(e.target.value)}
      />
      {nothingMatched && <p>Choose at least one matcher.</p>}
      <div className="silence-form__buttons">
        <button
          className="button button--primary"
          type="submit"
          disabled={busy || nothingMatched || comment.trim() === ''}
        >
          Create silence
        </button>
        <button className="button" type="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
      {error !== null && <ErrorMessage error={error} context="The silence was not created" />}
    </form>
  );
}

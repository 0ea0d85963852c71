import { useId, useState } from 'react';

import { ErrorMessage } from '@/components';

import { acknowledgeAlert, resolveAlert } from '../api/alerts';
import type { Alert } from '../types';

export interface AlertActionsProps {
  alert: Alert;
  onChanged: (alert: Alert) => void;
}

/** Acknowledge and resolve, with an optional note recorded in the alert's history. */
export function AlertActions({ alert, onChanged }: AlertActionsProps) {
  const noteId = useId();
  const [note, setNote] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  async function run(change: (id: string, note: string) => Promise<Alert>): Promise<void> {
    setBusy(true);
    setError(null);
    try {
      onChanged(await change(alert.id, note));
      setNote('');
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="alert-actions" aria-label="Acknowledge or resolve">
      <label htmlFor={noteId}>Note (optional)</label>
      <input id={noteId} type="text" value={note} onChange={(e) => setNote(e.target.value)} />
      <div className="alert-actions__buttons">
        <button
          className="button"
          type="button"
          disabled={busy || alert.status !== 'firing'}
          onClick={() => void run(acknowledgeAlert)}
        >
          Acknowledge
        </button>
        <button
          className="button"
          type="button"
          disabled={busy || alert.status === 'resolved'}
          onClick={() => void run(resolveAlert)}
        >
          Resolve
        </button>
      </div>
      {error !== null && <ErrorMessage error={error} context="The alert was not changed" />}
    </section>
  );
}

import { useId, useState, type FormEvent } from 'react';

import { ErrorMessage } from '@/components';
import { formatDateTime } from '@/lib/format';

import { commentOnAlert } from '../api/alerts';
import type { Alert, HistoryEntry } from '../types';

export interface AlertCommentsProps {
  alert: Alert;
  history: HistoryEntry[];
  /** Without it the comments are shown read-only (no form). */
  onCommented?: (alert: Alert) => void;
}

/** The comments on an alert (history entries with the "commented" action) and a form to add one. */
export function AlertComments({ alert, history, onCommented }: AlertCommentsProps) {
  const textId = useId();
  const [text, setText] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const comments = history.filter((entry) => entry.action === 'commented' && entry.comment);

  async function submit(event: FormEvent<HTMLFormElement>): Promise<void> {
    event.preventDefault();
    if (text.trim() === '') return;
    setBusy(true);
    setError(null);
    try {
      onCommented?.(await commentOnAlert(alert.id, text.trim()));
      setText('');
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="alert-comments" aria-labelledby={`${textId}-heading`}>
      <h3 id={`${textId}-heading`}>Comments</h3>
      {comments.length === 0 ? (
        <p>No comments yet.</p>
      ) : (
        <ul>
          {comments.map((entry, index) => (
            <li key={`${entry.at}-${index}`}>
              <p>{entry.comment}</p>
              <p className="alert-comments__by">
                {entry.actor}, <time dateTime={entry.at}>{formatDateTime(entry.at)}</time>
              </p>
            </li>
          ))}
        </ul>
      )}
      {onCommented && (
        <form onSubmit={(e) => void submit(e)}>
          <label htmlFor={textId}>Add a comment</label>
          <textarea
            id={textId}
            required
            maxLength={4096}
            rows={3}
            value={text}
            onChange={(e) => setText(e.target.value)}
          />
          <button
            className="button button--primary"
            type="submit"
            disabled={busy || text.trim() === ''}
          >
            Add comment
          </button>
        </form>
      )}
      {error !== null && <ErrorMessage error={error} context="The comment was not saved" />}
    </section>
  );
}

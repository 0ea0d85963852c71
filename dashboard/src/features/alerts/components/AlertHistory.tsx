import { formatDateTime } from '@/lib/format';

import type { HistoryEntry } from '../types';

function describe(entry: HistoryEntry): string {
  const change =
    entry.from_status && entry.to_status && entry.from_status !== entry.to_status
      ? ` (${entry.from_status} → ${entry.to_status})`
      : '';
  return `${entry.actor} ${entry.action}${change}`;
}

/** Who did what to the alert and when, oldest first. */
export function AlertHistory({ history }: { history: HistoryEntry[] }) {
  return (
    <section className="alert-history" aria-label="History">
      <h3>History</h3>
      {history.length === 0 ? (
        <p>No history recorded.</p>
      ) : (
        <ol>
          {history.map((entry, index) => (
            <li key={`${entry.at}-${index}`}>
              <time dateTime={entry.at}>{formatDateTime(entry.at)}</time>: {describe(entry)}
              {entry.comment && <> <q>{entry.comment}</q></>}
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}

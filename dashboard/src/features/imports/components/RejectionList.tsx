import type { Rejection } from '../types';

export interface RejectionListProps {
  rejections: Rejection[];
  /** How many rows were rejected in all (the API lists the first ones only). */
  total: number;
}

/** The rejected rows by line, with the reason each was left out. */
export function RejectionList({ rejections, total }: RejectionListProps) {
  if (total === 0) return null;
  return (
    <section aria-label="Rejected rows">
      <h3>Rejected rows</h3>
      {rejections.length < total && (
        <p>
          Showing the first {rejections.length} of {total} rejected rows.
        </p>
      )}
      <div className="table-wrap">
        <table className="table imports-table">
          <caption>Why each row was rejected</caption>
          <thead>
            <tr>
              <th scope="col">Line</th>
              <th scope="col">Column</th>
              <th scope="col">Reason</th>
            </tr>
          </thead>
          <tbody>
            {rejections.map((rejection, index) => (
              <tr key={`${rejection.line}-${index}`}>
                <td>{rejection.line}</td>
                <td>{rejection.field ?? '—'}</td>
                <td>{rejection.message}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

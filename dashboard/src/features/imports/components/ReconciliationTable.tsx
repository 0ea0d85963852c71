import { columnTitle, reconciliationRows } from './reconciliation';

/** Totals per currency and cost basis, as summed from the file and as stored. */
export function ReconciliationTable({ reconciliation }: { reconciliation: unknown }) {
  const rows = reconciliationRows(reconciliation);
  if (rows.length === 0) {
    if (reconciliation === undefined || reconciliation === null) return null;
    return (
      <section aria-label="Totals and reconciliation">
        <h3>Totals and reconciliation</h3>
        <pre className="imports-raw">{JSON.stringify(reconciliation, null, 2)}</pre>
      </section>
    );
  }
  const keys = [...new Set(rows.flatMap((row) => Object.keys(row.values)))];
  return (
    <section aria-label="Totals and reconciliation">
      <h3>Totals and reconciliation</h3>
      <table className="imports-table">
        <caption>Sums in the file and as stored, per currency and cost basis</caption>
        <thead>
          <tr>
            <th scope="col">Currency</th>
            <th scope="col">Cost basis</th>
            {keys.map((key) => (
              <th scope="col" key={key}>
                {columnTitle(key)}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={`${row.currency}/${row.basis}`}>
              <th scope="row">{row.currency}</th>
              <td>{row.basis}</td>
              {keys.map((key) => (
                <td key={key} className="imports-number">
                  {row.values[key] ?? '—'}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

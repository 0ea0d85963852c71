import { addsUp, columnTitle, reconciliationRows } from './reconciliation';

function describeCheck(result: boolean | undefined): string {
  if (result === undefined) return '—';
  return result ? 'yes' : 'no: the sums differ';
}

/** Totals per currency and cost basis, as summed from the file and as stored. */
export function ReconciliationTable({ reconciliation }: { reconciliation: unknown }) {
  const rows = reconciliationRows(reconciliation);
  if (rows.length === 0) {
    const nothing =
      reconciliation === undefined ||
      reconciliation === null ||
      (typeof reconciliation === 'object' && Object.keys(reconciliation).length === 0);
    if (nothing) return null;
    return (
      <section aria-label="Totals and reconciliation">
        <h3>Totals and reconciliation</h3>
        <pre className="imports-raw">{JSON.stringify(reconciliation, null, 2)}</pre>
      </section>
    );
  }
  const keys = [...new Set(rows.flatMap((row) => Object.keys(row.values)))];
  const checked = rows.map((row) => addsUp(row.values));
  const showCheck = checked.some((result) => result !== undefined);
  return (
    <section aria-label="Totals and reconciliation">
      <h3>Totals and reconciliation</h3>
      <div className="table-wrap">
        <table className="table imports-table">
          <caption>Sums in the file and as stored, per currency and cost basis</caption>
          <thead>
            <tr>
              <th scope="col">Currency</th>
              <th scope="col">Cost basis</th>
              {keys.map((key) => (
                <th scope="col" className="num" key={key}>
                  {columnTitle(key)}
                </th>
              ))}
              {showCheck && <th scope="col">File = stored + rejected</th>}
            </tr>
          </thead>
          <tbody>
            {rows.map((row, index) => (
              <tr key={`${row.currency}/${row.basis}`}>
                <th scope="row">{row.currency}</th>
                <td>{row.basis}</td>
                {keys.map((key) => (
                  <td key={key} className="num">
                    {row.values[key] ?? '—'}
                  </td>
                ))}
                {showCheck && <td>{describeCheck(checked[index])}</td>}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

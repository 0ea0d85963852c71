import type { Finding } from '../types';
import { columnTitle } from './reconciliation';

/** Kept rows whose values broke a FOCUS rule, per rule, with example lines. */
export function ImportFindings({ findings }: { findings: Record<string, Finding> }) {
  const rules = Object.entries(findings).sort(([, a], [, b]) => b.count - a.count);
  if (rules.length === 0) return null;
  return (
    <section aria-label="Findings">
      <h3>Findings (rows kept, values stored as null or normalised)</h3>
      {rules.map(([rule, finding]) => (
        <table className="table imports-table" key={rule}>
          <caption>
            {columnTitle(rule)}: {finding.count} {finding.count === 1 ? 'value' : 'values'}
          </caption>
          <thead>
            <tr>
              <th scope="col">Line</th>
              <th scope="col">Column</th>
              <th scope="col">In the file</th>
              <th scope="col">Stored as</th>
            </tr>
          </thead>
          <tbody>
            {finding.examples.map((example, index) => (
              <tr key={`${example.line}-${example.column}-${index}`}>
                <td>{example.line}</td>
                <td>{example.column ?? '—'}</td>
                <td>
                  {example.value ? <code>{example.value}</code> : '(empty)'}
                </td>
                <td>{example.stored === null ? 'null' : <code>{example.stored}</code>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ))}
    </section>
  );
}

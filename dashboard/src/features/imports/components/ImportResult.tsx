import { StatusBadge } from '@/components';
import { formatDateTime } from '@/lib/format';

import type { ImportRecord } from '../types';
import { ImportFindings } from './ImportFindings';
import { ReconciliationTable } from './ReconciliationTable';
import { RejectionList } from './RejectionList';

function count(value: number | null | undefined): string {
  return value === null || value === undefined ? '—' : value.toLocaleString('en-US');
}

/** What an import did: rows accepted, rejected and with findings, then the details of each. */
export interface ImportResultProps {
  record: ImportRecord;
  /** Whether to repeat the import's failure here (not when the page already shows it). */
  showFailure?: boolean;
}

export function ImportResult({ record, showFailure = true }: ImportResultProps) {
  const figures: [string, string][] = [
    ['Rows read', count(record.rows_read)],
    ['Rows accepted', count(record.rows_accepted)],
    ['Rows rejected', count(record.rows_rejected)],
  ];
  if (record.rows_with_findings !== undefined) {
    figures.push(['Rows with findings', count(record.rows_with_findings)]);
  }
  figures.push(['Older rows replaced', count(record.rows_replaced)]);
  return (
    <section className="card imports-result" aria-label="Import result">
      <h2>
        Import of {record.filename}: <StatusBadge status={record.status} />
      </h2>
      {showFailure && record.error?.detail && (
        <div role="alert">
          <p>Nothing of the file was kept: {record.error.detail}</p>
          {record.error.errors && record.error.errors.length > 0 && (
            <ul>
              {record.error.errors.map((item, index) => (
                <li key={index}>
                  {item.field ? `${item.field}: ` : ''}
                  {item.message}
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
      <dl className="stats">
        {figures.map(([label, value]) => (
          <div className="stat" key={label}>
            <dt>{label}</dt>
            <dd>{value}</dd>
          </div>
        ))}
        <div className="stat">
          <dt>FOCUS version</dt>
          <dd>{record.focus_version ?? '—'}</dd>
        </div>
      </dl>
      <p className="muted small">
        Finished {formatDateTime(record.finished_at)} · import id <code>{record.id}</code>
      </p>
      {record.findings && <ImportFindings findings={record.findings} />}
      <RejectionList rejections={record.rejections} total={record.rows_rejected} />
      <ReconciliationTable reconciliation={record.reconciliation} />
    </section>
  );
}

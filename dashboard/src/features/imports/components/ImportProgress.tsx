import { useId } from 'react';

import type { ImportPhase } from '../hooks/useFocusImport';
import type { ImportRecord, UploadProgress } from '../types';

function count(rows: number): string {
  return rows.toLocaleString('en-US');
}

function megabytes(bytes: number): string {
  return `${(bytes / 1_048_576).toFixed(1)} MB`;
}

export interface ImportProgressProps {
  phase: ImportPhase;
  upload: UploadProgress;
  record: ImportRecord | null;
  onCancel: () => void;
}

/** Bytes sent while uploading, then the server's own progress while it imports. */
export function ImportProgress({ phase, upload, record, onCancel }: ImportProgressProps) {
  const id = useId();
  if (phase === 'uploading') {
    const percent = upload.total > 0 ? Math.floor((upload.loaded / upload.total) * 100) : 0;
    return (
      <section className="imports-progress" aria-label="Upload progress">
        <label htmlFor={id}>Uploading</label>
        <progress id={id} max={upload.total || 1} value={upload.loaded}>
          {percent}%
        </progress>
        <p aria-live="polite">
          {megabytes(upload.loaded)} of {megabytes(upload.total)} sent ({percent}%)
        </p>
        <p className="muted small">Keep this page open until the import has finished.</p>
        <button className="button" type="button" onClick={onCancel}>
          Cancel upload
        </button>
      </section>
    );
  }
  if (phase === 'importing') {
    return (
      <section className="imports-progress" aria-label="Import progress">
        <label htmlFor={id}>Importing on the server</label>
        {/* No value: the number of rows is unknown until the file has been read. */}
        <progress id={id} />
        <p aria-live="polite">
          {record
            ? `${count(record.rows_read)} rows read, ${count(record.rows_accepted)} accepted so far…`
            : 'The file is uploaded; its rows are being checked and stored…'}
        </p>
      </section>
    );
  }
  return null;
}

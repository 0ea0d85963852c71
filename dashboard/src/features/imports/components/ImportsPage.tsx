import { ErrorMessage } from '@/components';
import { hasPermission, useSessionStore } from '@/stores/session';

import { useFocusImport } from '../hooks/useFocusImport';
import { FocusFileForm } from './FocusFileForm';
import { ImportProgress } from './ImportProgress';
import { ImportResult } from './ImportResult';
import './imports.css';

/** Import a FOCUS billing file and see what came of it. No props. */
export function ImportsPage() {
  const canWrite = useSessionStore((state) => hasPermission(state.user, 'write'));
  const focusImport = useFocusImport();
  const { phase, upload, record, error, filename } = focusImport;
  const busy = phase === 'uploading' || phase === 'importing';
  return (
    <div className="imports-page">
      <h1>Billing imports</h1>
      <section className="card" aria-label="Upload a file">
        {canWrite ? (
          <FocusFileForm busy={busy} onUpload={focusImport.start} />
        ) : (
          <p role="note" className="notice">
            Importing billing files needs the write permission, which your account does not have.
          </p>
        )}
        <ImportProgress
          phase={phase}
          upload={upload}
          record={record}
          onCancel={focusImport.cancel}
        />
        {phase === 'cancelled' && <p role="status">The upload of {filename} was cancelled.</p>}
        {error !== null && (
          <ErrorMessage error={error} context={`Import of ${filename ?? 'the file'} failed`} />
        )}
      </section>
      {(phase === 'done' || phase === 'failed') && record && (
        <ImportResult record={record} showFailure={error === null} />
      )}
    </div>
  );
}

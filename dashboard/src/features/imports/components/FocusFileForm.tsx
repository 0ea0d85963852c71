import { useId, useState, type FormEvent } from 'react';

export interface FocusFileFormProps {
  busy: boolean;
  onUpload: (file: File) => void;
}

/** Choose a FOCUS cost-and-usage file (CSV, or CSV compressed with gzip) and send it. */
export function FocusFileForm({ busy, onUpload }: FocusFileFormProps) {
  const id = useId();
  const [file, setFile] = useState<File | null>(null);

  function submit(event: FormEvent<HTMLFormElement>): void {
    event.preventDefault();
    if (file) onUpload(file);
  }

  return (
    <form className="imports-form" aria-label="Import a FOCUS file" onSubmit={submit}>
      <label htmlFor={id}>FOCUS file (.csv or .csv.gz)</label>
      <input
        id={id}
        type="file"
        accept=".csv,.gz,text/csv,application/gzip"
        aria-describedby={`${id}-hint`}
        onChange={(e) => setFile(e.target.files?.[0] ?? null)}
      />
      <p id={`${id}-hint`} className="imports-hint">
        Rows of the same billing account and an overlapping billing period replace the ones imported
        before, so importing a file again never counts it twice.
      </p>
      <button className="button button--primary" type="submit" disabled={busy || file === null}>
        Upload and import
      </button>
    </form>
  );
}

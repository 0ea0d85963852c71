/** A FOCUS import as `GET /api/costs/imports/{id}` renders it (costs/storage.py, importer.py). */

export type ImportStatus = 'running' | 'succeeded' | 'failed';

export interface Rejection {
  line: number;
  field: string | null;
  message: string;
}

export interface FindingExample {
  line: number;
  column: string;
  value: string;
  stored: string | null;
}

/** Rows kept but changed or questionable, per rule (e.g. a value normalised on the way in). */
export interface Finding {
  count: number;
  examples: FindingExample[];
}

export interface ImportRecord {
  id: string;
  filename: string;
  status: ImportStatus;
  focus_version: string | null;
  sha256: string | null;
  rows_read: number;
  rows_accepted: number;
  rows_rejected: number;
  rows_replaced: number | null;
  error: { detail?: string; errors?: { field?: string; message?: string }[] } | null;
  created_by: string | null;
  started_at: string;
  finished_at: string | null;
  /** The first rejected rows (the API returns at most 100; `rows_rejected` counts all). */
  rejections: Rejection[];
  rows_with_findings?: number;
  findings?: Record<string, Finding>;
  /** Sums per currency and cost basis: in the file vs stored. Shape read by `reconciliationRows`. */
  reconciliation?: unknown;
}

export interface UploadProgress {
  loaded: number;
  total: number;
}

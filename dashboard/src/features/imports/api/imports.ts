/** `POST /api/costs/imports` (an upload with progress, so XMLHttpRequest) and `GET …/{id}`. */
import { ApiError, apiFetch, csrfHeaders, problemToError } from '@/lib/api';

import type { ImportRecord, UploadProgress } from '../types';

/** A refused import; the costs service still recorded it, under `importId`, with its findings. */
export class ImportRefused extends ApiError {
  importId: string;

  constructor(error: ApiError, importId: string) {
    super(error);
    this.name = 'ImportRefused';
    this.importId = importId;
  }
}

export function uploadContentType(filename: string): string {
  return filename.toLowerCase().endsWith('.gz') ? 'application/gzip' : 'text/csv';
}

export interface UploadCallbacks {
  onProgress: (progress: UploadProgress) => void;
  /** Every byte is sent; the server is still reading the file into the database. */
  onUploaded: () => void;
  signal?: AbortSignal;
}

function parseBody(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** Streams the file to the costs service; resolves with the finished import record. */
export function uploadFocusFile(file: File, callbacks: UploadCallbacks): Promise<ImportRecord> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `/api/costs/imports?filename=${encodeURIComponent(file.name)}`);
    xhr.withCredentials = true;
    xhr.setRequestHeader('Content-Type', uploadContentType(file.name));
    xhr.setRequestHeader('Accept', 'application/json');
    for (const [name, value] of Object.entries(csrfHeaders())) xhr.setRequestHeader(name, value);

    xhr.upload.onprogress = (event) => {
      callbacks.onProgress({
        loaded: event.loaded,
        total: event.lengthComputable ? event.total : file.size,
      });
    };
    xhr.upload.onload = () => callbacks.onUploaded();
    xhr.onload = () => {
      const body = parseBody(xhr.responseText);
      if (xhr.status >= 200 && xhr.status < 300) {
        const envelope = body as { data?: ImportRecord } | undefined;
        if (envelope?.data) resolve(envelope.data);
        else reject(problemToError(xhr.status, { title: 'The server sent no import record' }));
        return;
      }
      const error = problemToError(xhr.status, body, xhr.getResponseHeader('X-Request-ID'));
      const importId = xhr.getResponseHeader('X-Import-Id');
      reject(importId ? new ImportRefused(error, importId) : error);
    };
    xhr.onerror = () =>
      reject(
        new ApiError({
          status: 0,
          title: 'Network error',
          detail: 'The upload was interrupted. Check your connection and try again.',
        }),
      );
    xhr.onabort = () => reject(new DOMException('The upload was cancelled.', 'AbortError'));
    callbacks.signal?.addEventListener('abort', () => xhr.abort(), { once: true });
    xhr.send(file);
  });
}

export async function getImport(id: string, signal?: AbortSignal): Promise<ImportRecord> {
  const { data } = await apiFetch<ImportRecord>(`/api/costs/imports/${encodeURIComponent(id)}`, {
    signal,
  });
  return data;
}

import { useCallback, useEffect, useRef, useState } from 'react';

import { sleep } from '@/lib/sleep';

import { getImport, ImportRefused, uploadFocusFile } from '../api/imports';
import type { ImportRecord, UploadProgress } from '../types';

export type ImportPhase = 'idle' | 'uploading' | 'importing' | 'done' | 'failed' | 'cancelled';

export interface FocusImportState {
  phase: ImportPhase;
  filename: string | null;
  upload: UploadProgress;
  /** The import record: the final one, or the latest poll while it still runs. */
  record: ImportRecord | null;
  error: unknown;
}

export interface FocusImport extends FocusImportState {
  start: (file: File) => void;
  cancel: () => void;
}

const IDLE: FocusImportState = {
  phase: 'idle',
  filename: null,
  upload: { loaded: 0, total: 0 },
  record: null,
  error: null,
};

function isAbort(error: unknown): boolean {
  return error instanceof DOMException && error.name === 'AbortError';
}

/**
 * Uploads one FOCUS file, then follows the import until it ends: the upload reports bytes sent;
 * a record still `running` is polled (every `pollMs`) until it succeeds or fails.
 */
export function useFocusImport(pollMs = 1000): FocusImport {
  const [state, setState] = useState<FocusImportState>(IDLE);
  const running = useRef<AbortController | null>(null);

  useEffect(() => () => running.current?.abort(), []);

  const follow = useCallback(
    async (file: File, signal: AbortSignal): Promise<void> => {
      let record = await uploadFocusFile(file, {
        signal,
        onProgress: (upload) => setState((s) => ({ ...s, upload })),
        onUploaded: () => setState((s) => ({ ...s, phase: 'importing' })),
      });
      while (record.status === 'running' && !signal.aborted) {
        setState((s) => ({ ...s, phase: 'importing', record }));
        await sleep(pollMs, signal);
        if (signal.aborted) return;
        record = await getImport(record.id, signal);
      }
      if (signal.aborted) return;
      setState((s) => ({ ...s, phase: record.status === 'failed' ? 'failed' : 'done', record }));
    },
    [pollMs],
  );

  /** The refused import's record: its sums and findings show where the file went wrong. */
  const showRefused = useCallback(async (importId: string, controller: AbortController) => {
    try {
      const record = await getImport(importId, controller.signal);
      if (running.current === controller) setState((s) => ({ ...s, record }));
    } catch {
      // the error itself is already shown; the record is a bonus
    }
  }, []);

  const start = useCallback(
    (file: File) => {
      running.current?.abort();
      const controller = new AbortController();
      running.current = controller;
      setState({
        ...IDLE,
        phase: 'uploading',
        filename: file.name,
        upload: { loaded: 0, total: file.size },
      });
      follow(file, controller.signal).then(
        () => {
          if (controller.signal.aborted && running.current === controller) {
            setState((s) => ({ ...s, phase: 'cancelled' }));
          }
        },
        (error: unknown) => {
          if (running.current !== controller) return; // a newer upload replaced this one
          const cancelled = isAbort(error);
          setState((s) => ({
            ...s,
            phase: cancelled ? 'cancelled' : 'failed',
            error: cancelled ? null : error,
          }));
          if (error instanceof ImportRefused) void showRefused(error.importId, controller);
        },
      );
    },
    [follow, showRefused],
  );

  const cancel = useCallback(() => running.current?.abort(), []);

  return { ...state, start, cancel };
}

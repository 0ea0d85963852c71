import { useCallback, useEffect, useState } from 'react';

export interface AsyncList<T> {
  value: T | null;
  loading: boolean;
  error: unknown;
  reload: () => void;
}

/** Loads `load()` on mount and whenever `load` changes or `reload` is called. */
export function useAsyncList<T>(load: () => Promise<T>): AsyncList<T> {
  const [value, setValue] = useState<T | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>(null);
  const [reloads, setReloads] = useState(0);

  useEffect(() => {
    let current = true;
    setLoading(true);
    load().then(
      (loaded) => {
        if (!current) return;
        setValue(loaded);
        setError(null);
        setLoading(false);
      },
      (failure: unknown) => {
        if (!current) return;
        setError(failure);
        setLoading(false);
      },
    );
    return () => {
      current = false;
    };
  }, [load, reloads]);

  const reload = useCallback(() => setReloads((n) => n + 1), []);
  return { value, loading, error, reload };
}

import { useCallback, useMemo } from 'react';
import { useSearchParams } from 'react-router';
import { FILTER_KEYS, type ResourceFilters } from '../types';

/** Filters and the selected resource live in the URL, so a view can be shared. */
export function useResourceFilters() {
  const [params, setParams] = useSearchParams();
  const key = params.toString();
  const filters = useMemo(() => {
    const current: ResourceFilters = {};
    const search = new URLSearchParams(key);
    for (const name of FILTER_KEYS) {
      const value = search.get(name);
      if (value) current[name] = value;
    }
    return current;
  }, [key]);
  const selectedId = params.get('selected');

  const setFilters = useCallback(
    (patch: ResourceFilters) => {
      setParams((previous) => {
        const next = new URLSearchParams(previous);
        for (const name of FILTER_KEYS) {
          if (!(name in patch)) continue;
          const value = patch[name]?.trim();
          if (value) next.set(name, value);
          else next.delete(name);
        }
        return next;
      });
    },
    [setParams],
  );

  const select = useCallback(
    (id: string | null) => {
      setParams((previous) => {
        const next = new URLSearchParams(previous);
        if (id) next.set('selected', id);
        else next.delete('selected');
        return next;
      });
    },
    [setParams],
  );

  return { filters, setFilters, selectedId, select };
}

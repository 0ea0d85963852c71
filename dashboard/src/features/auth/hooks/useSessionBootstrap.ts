import { useEffect, useState } from 'react';
import { ApiError } from '@/lib/api';
import { useSessionStore } from '@/stores/session';
import { fetchSession } from '../api/session';

/** Asks the gateway once on load whether the session cookie is still live. */
export function useSessionBootstrap(): { error: unknown } {
  const status = useSessionStore((state) => state.status);
  const setSession = useSessionStore((state) => state.setSession);
  const clearSession = useSessionStore((state) => state.clearSession);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    if (status !== 'unknown') return;
    let cancelled = false;
    fetchSession()
      .then((data) => {
        if (!cancelled) setSession({ username: data.username, permissions: data.permissions }, data.csrf_token);
      })
      .catch((cause: unknown) => {
        if (cancelled) return;
        // 401 already cleared the store; any other failure still leads to the login page.
        if (!(cause instanceof ApiError && cause.status === 401)) setError(cause);
        clearSession(null);
      });
    return () => {
      cancelled = true;
    };
  }, [status, setSession, clearSession, setError]);

  return { error };
}


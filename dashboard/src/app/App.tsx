import { useQueryClient } from '@tanstack/react-query';
import { useEffect } from 'react';
import { BrowserRouter } from 'react-router';
import { ErrorBoundary, Loading } from '@/components';
import { LoginPage, useSessionBootstrap } from '@/features/auth';
import { useSessionStore } from '@/stores/session';
import { AppProviders } from './AppProviders';
import { AppRoutes } from './AppRoutes';

/** Shows the login page until the session is known to be live; a 401 anywhere brings it back. */
export function SessionGate() {
  const status = useSessionStore((state) => state.status);
  const { error } = useSessionBootstrap();
  const queryClient = useQueryClient();
  // Whatever ended the session (logout, expiry, a 401 in a stale tab), nothing of it stays cached.
  useEffect(() => {
    if (status === 'anonymous') queryClient.clear();
  }, [status, queryClient]);
  if (status === 'unknown') return <Loading label="Checking your session…" />;
  if (status === 'anonymous') return <LoginPage error={error} />;
  return <AppRoutes />;
}

/** The last line of defence: trying again starts the providers afresh (a new query cache). */
export function App() {
  return (
    <ErrorBoundary title="CloudOps could not be shown">
      <AppProviders>
        <BrowserRouter>
          <SessionGate />
        </BrowserRouter>
      </AppProviders>
    </ErrorBoundary>
  );
}

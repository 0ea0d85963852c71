import { useQueryClient } from '@tanstack/react-query';
import { Suspense } from 'react';
import { NavLink, Outlet, useLocation } from 'react-router';
import { ErrorBoundary, Loading } from '@/components';
import { LogoutButton } from '@/features/auth';
import { hasPermission, useSessionStore } from '@/stores/session';

const NAV = [
  { to: '/', label: 'Overview', end: true },
  { to: '/resources', label: 'Resources' },
  { to: '/costs', label: 'Costs' },
  { to: '/savings', label: 'Savings' },
  { to: '/alerts', label: 'Alerts' },
  { to: '/imports', label: 'Imports' },
];

/** Header with navigation and the signed-in user, then the current view. */
export function AppLayout() {
  const user = useSessionStore((state) => state.user);
  const { pathname } = useLocation();
  const queryClient = useQueryClient();
  const links = hasPermission(user, 'admin') ? [...NAV, { to: '/admin', label: 'Admin' }] : NAV;
  return (
    <div className="app">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="app-header">
        <span className="brand">CloudOps</span>
        <nav aria-label="Main">
          <ul className="nav">
            {links.map((link) => (
              <li key={link.to}>
                <NavLink to={link.to} end={link.end} className={({ isActive }) => (isActive ? 'nav__link is-active' : 'nav__link')}>
                  {link.label}
                </NavLink>
              </li>
            ))}
          </ul>
        </nav>
        <div className="app-header__user">
          <span className="muted">Signed in as {user?.username}</span>
          <LogoutButton />
        </div>
      </header>
      <main id="main" className="app-main" tabIndex={-1}>
        {/* A view that fails to render leaves the header usable; opening another view starts afresh.
            Trying again drops the cached answers no mounted screen uses (the failed view's), so
            they are fetched anew instead of breaking the view again. */}
        <ErrorBoundary
          key={pathname}
          title="This view could not be shown"
          onReset={() => void queryClient.resetQueries({ type: 'inactive' })}
        >
          <Suspense fallback={<Loading label="Loading view…" />}>
            <Outlet />
          </Suspense>
        </ErrorBoundary>
      </main>
    </div>
  );
}

import { lazy } from 'react';
import { Navigate, Route, Routes } from 'react-router';
// The alerts feature is in the first download anyway: the overview shows its live feed.
import { AlertsPage } from '@/features/alerts';
import { hasPermission, useSessionStore } from '@/stores/session';
import { AppLayout } from './AppLayout';
import { NotFoundPage } from './routes/NotFoundPage';
import { OverviewPage } from './routes/OverviewPage';

// The overview is in the first download; every other view loads when first opened.
const ResourcesPage = lazy(() => import('./routes/ResourcesPage').then((m) => ({ default: m.ResourcesPage })));
const CostsPage = lazy(() => import('./routes/CostsPage').then((m) => ({ default: m.CostsPage })));
const SavingsPage = lazy(() => import('./routes/SavingsPage').then((m) => ({ default: m.SavingsPage })));
const ImportsPage = lazy(() => import('@/features/imports').then((m) => ({ default: m.ImportsPage })));
const AdminPage = lazy(() => import('@/features/admin').then((m) => ({ default: m.AdminPage })));

export function AppRoutes() {
  const isAdmin = useSessionStore((state) => hasPermission(state.user, 'admin'));
  return (
    <Routes>
      <Route element={<AppLayout />}>
        <Route index element={<OverviewPage />} />
        <Route path="resources" element={<ResourcesPage />} />
        <Route path="costs" element={<CostsPage />} />
        <Route path="savings" element={<SavingsPage />} />
        <Route path="alerts" element={<AlertsPage />} />
        <Route path="imports" element={<ImportsPage />} />
        <Route path="admin" element={isAdmin ? <AdminPage /> : <Navigate to="/" replace />} />
        <Route path="*" element={<NotFoundPage />} />
      </Route>
    </Routes>
  );
}

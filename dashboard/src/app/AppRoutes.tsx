import { Navigate, Route, Routes } from 'react-router';
import { AdminPage } from '@/features/admin';
import { AlertsPage } from '@/features/alerts';
import { ImportsPage } from '@/features/imports';
import { hasPermission, useSessionStore } from '@/stores/session';
import { AppLayout } from './AppLayout';
import { CostsPage } from './routes/CostsPage';
import { NotFoundPage } from './routes/NotFoundPage';
import { OverviewPage } from './routes/OverviewPage';
import { ResourcesPage } from './routes/ResourcesPage';
import { SavingsPage } from './routes/SavingsPage';

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

import { hasPermission, useSessionStore } from '@/stores/session';

import { ApiKeysSection } from './ApiKeysSection';
import { UsersSection } from './UsersSection';
import './admin.css';

/** API keys and dashboard users; only for the admin permission. No props. */
export function AdminPage() {
  const user = useSessionStore((state) => state.user);
  if (!hasPermission(user, 'admin')) {
    return (
      <div className="admin-page">
        <h1>Administration</h1>
        <p role="alert" className="admin-denied">
          This page needs the <strong>admin</strong> permission, which your account
          {user ? ` (${user.username})` : ''} does not have. Ask an administrator to manage API keys
          and users, or to grant you the permission.
        </p>
      </div>
    );
  }
  return (
    <div className="admin-page">
      <h1>Administration</h1>
      <ApiKeysSection />
      <UsersSection />
    </div>
  );
}

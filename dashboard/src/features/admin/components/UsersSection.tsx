import { EmptyState, ErrorMessage, Loading } from '@/components';

import { useReloadUsers, useUsers } from '../hooks/useAdminLists';
import { CreateUserForm } from './CreateUserForm';
import { UserTable } from './UserTable';

/** Dashboard users: list and create. */
export function UsersSection() {
  const { data: users, isFetching, error } = useUsers();
  const reload = useReloadUsers();
  return (
    <section className="card admin-section" aria-labelledby="admin-users-title">
      <h2 id="admin-users-title">Users</h2>
      <CreateUserForm onCreated={reload} />
      {error !== null && <ErrorMessage error={error} context="Could not load the users" />}
      {users === undefined ? (
        isFetching && <Loading label="Loading users…" />
      ) : users.length === 0 ? (
        <EmptyState title="No users yet" />
      ) : (
        <UserTable users={users} />
      )}
    </section>
  );
}

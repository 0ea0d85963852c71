import { formatDateTime } from '@/lib/format';

import type { User } from '../types';

export function UserTable({ users }: { users: User[] }) {
  return (
    <table className="table admin-table">
      <caption>Users</caption>
      <thead>
        <tr>
          <th scope="col">Username</th>
          <th scope="col">Permissions</th>
          <th scope="col">Created</th>
          <th scope="col">Account</th>
        </tr>
      </thead>
      <tbody>
        {users.map((user) => (
          <tr key={user.username}>
            <th scope="row">{user.username}</th>
            <td>{user.permissions.join(', ')}</td>
            <td>{formatDateTime(user.created_at)}</td>
            <td>{user.disabled ? 'disabled' : 'enabled'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

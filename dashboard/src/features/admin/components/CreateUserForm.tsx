import { useId, useState, type FormEvent } from 'react';

import { ErrorMessage } from '@/components';

import { createUser } from '../api/admin';
import type { Permission, User } from '../types';
import { PermissionChoice } from './PermissionChoice';

export interface CreateUserFormProps {
  onCreated: (user: User) => void;
}

/** A dashboard user: name, initial password and permissions. */
export function CreateUserForm({ onCreated }: CreateUserFormProps) {
  const id = useId();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [permissions, setPermissions] = useState<Permission[]>(['read']);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [created, setCreated] = useState<string | null>(null);

  async function submit(event: FormEvent<HTMLFormElement>): Promise<void> {
    event.preventDefault();
    setBusy(true);
    setError(null);
    setCreated(null);
    try {
      const user = await createUser({ username: username.trim(), password, permissions });
      setCreated(user.username);
      setUsername('');
      setPassword('');
      setPermissions(['read']);
      onCreated(user);
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="admin-form" aria-label="Create a user" onSubmit={(e) => void submit(e)}>
      <label htmlFor={`${id}-username`}>Username</label>
      <input
        id={`${id}-username`}
        required
        autoComplete="off"
        pattern="[a-z0-9][a-z0-9._\-]{2,63}"
        aria-describedby={`${id}-username-hint`}
        value={username}
        onChange={(e) => setUsername(e.target.value)}
      />
      <p id={`${id}-username-hint`} className="admin-hint">
        3 to 64 characters: lowercase letters, digits, “.”, “_” or “-”.
      </p>
      <label htmlFor={`${id}-password`}>Password</label>
      <input
        id={`${id}-password`}
        type="password"
        required
        maxLength={256}
        autoComplete="new-password"
        value={password}
        onChange={(e) => setPassword(e.target.value)}
      />
      <PermissionChoice value={permissions} onChange={setPermissions} />
      <button
        className="button button--primary"
        type="submit"
        disabled={busy || permissions.length === 0}
      >
        Create user
      </button>
      {created && <p role="status">User {created} created.</p>}
      {error !== null && <ErrorMessage error={error} context="The user was not created" />}
    </form>
  );
}

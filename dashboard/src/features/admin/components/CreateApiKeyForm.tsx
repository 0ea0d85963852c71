import { useId, useState, type FormEvent } from 'react';

import { ErrorMessage } from '@/components';

import { createApiKey } from '../api/admin';
import type { ApiKeyInput, CreatedApiKey, Permission } from '../types';
import { PermissionChoice } from './PermissionChoice';

export interface CreateApiKeyFormProps {
  onCreated: (key: CreatedApiKey) => void;
}

function keyInput(fields: {
  name: string;
  owner: string;
  permissions: Permission[];
  expires: string;
  rateLimit: string;
  rateWindow: string;
}): ApiKeyInput {
  const input: ApiKeyInput = {
    name: fields.name.trim(),
    owner: fields.owner.trim(),
    permissions: fields.permissions,
  };
  // datetime-local is the viewer's local time; the API wants an instant with its offset.
  if (fields.expires !== '') input.expires_at = new Date(fields.expires).toISOString();
  if (fields.rateLimit !== '') input.rate_limit = Number(fields.rateLimit);
  if (fields.rateWindow !== '') input.rate_window_seconds = Number(fields.rateWindow);
  return input;
}

/** Name, owner, permissions, and optionally an expiry and an own rate limit. */
export function CreateApiKeyForm({ onCreated }: CreateApiKeyFormProps) {
  const id = useId();
  const [name, setName] = useState('');
  const [owner, setOwner] = useState('');
  const [permissions, setPermissions] = useState<Permission[]>(['read']);
  const [expires, setExpires] = useState('');
  const [rateLimit, setRateLimit] = useState('');
  const [rateWindow, setRateWindow] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  async function submit(event: FormEvent<HTMLFormElement>): Promise<void> {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onCreated(
        await createApiKey(keyInput({ name, owner, permissions, expires, rateLimit, rateWindow })),
      );
      setName('');
      setOwner('');
      setPermissions(['read']);
      setExpires('');
      setRateLimit('');
      setRateWindow('');
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="admin-form" aria-label="Create an API key" onSubmit={(e) => void submit(e)}>
      <label htmlFor={`${id}-name`}>Key name</label>
      <input
        id={`${id}-name`}
        required
        maxLength={100}
        value={name}
        onChange={(e) => setName(e.target.value)}
      />
      <label htmlFor={`${id}-owner`}>Owner</label>
      <input
        id={`${id}-owner`}
        required
        maxLength={100}
        value={owner}
        onChange={(e) => setOwner(e.target.value)}
      />
      <PermissionChoice value={permissions} onChange={setPermissions} />
      <label htmlFor={`${id}-expires`}>Expires (optional, your local time)</label>
      <input
        id={`${id}-expires`}
        type="datetime-local"
        value={expires}
        onChange={(e) => setExpires(e.target.value)}
      />
      <label htmlFor={`${id}-rate`}>Requests allowed per window (optional)</label>
      <input
        id={`${id}-rate`}
        type="number"
        min={1}
        max={1_000_000}
        value={rateLimit}
        onChange={(e) => setRateLimit(e.target.value)}
      />
      <label htmlFor={`${id}-window`}>Window in seconds (optional)</label>
      <input
        id={`${id}-window`}
        type="number"
        min={1}
        max={86_400}
        value={rateWindow}
        onChange={(e) => setRateWindow(e.target.value)}
      />
      <button
        className="button button--primary"
        type="submit"
        disabled={busy || permissions.length === 0}
      >
        Create key
      </button>
      {error !== null && <ErrorMessage error={error} context="The key was not created" />}
    </form>
  );
}

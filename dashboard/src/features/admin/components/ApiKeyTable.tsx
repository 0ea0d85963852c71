import { StatusBadge } from '@/components';
import { formatDateTime } from '@/lib/format';

import type { ApiKey } from '../types';
import { RevokeKeyButton } from './RevokeKeyButton';

function keyState(key: ApiKey, now: number): 'revoked' | 'expired' | 'active' {
  if (key.revoked_at !== null) return 'revoked';
  if (key.expires_at !== null && Date.parse(key.expires_at) <= now) return 'expired';
  return 'active';
}

function rate(key: ApiKey): string {
  if (key.rate_limit === null) return 'default';
  return `${key.rate_limit} per ${key.rate_window_seconds ?? 'default window'} s`;
}

export interface ApiKeyTableProps {
  keys: ApiKey[];
  onRevoked: (key: ApiKey) => void;
}

export function ApiKeyTable({ keys, onRevoked }: ApiKeyTableProps) {
  const now = Date.now();
  return (
    <div className="table-wrap">
      <table className="table admin-table">
        <caption>API keys</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Id</th>
            <th scope="col">Owner</th>
            <th scope="col">Permissions</th>
            <th scope="col">Rate limit</th>
            <th scope="col">Created</th>
            <th scope="col">Expires</th>
            <th scope="col">State</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {keys.map((key) => {
            const state = keyState(key, now);
            return (
              <tr key={key.id}>
                <th scope="row">{key.name}</th>
                <td>
                  <code>{key.id}</code>
                </td>
                <td>{key.owner}</td>
                <td>{key.permissions.join(', ')}</td>
                <td>{rate(key)}</td>
                <td>{formatDateTime(key.created_at)}</td>
                <td>{key.expires_at === null ? 'never' : formatDateTime(key.expires_at)}</td>
                <td>
                  <StatusBadge status={state} />
                </td>
                <td>{state !== 'revoked' && <RevokeKeyButton apiKey={key} onRevoked={onRevoked} />}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

import { useEffect, useRef, useState } from 'react';

import { ErrorMessage } from '@/components';

import { revokeApiKey } from '../api/admin';
import type { ApiKey } from '../types';

export interface RevokeKeyButtonProps {
  apiKey: ApiKey;
  onRevoked: (key: ApiKey) => void;
}

/** "Revoke", then an explicit confirmation: a revoked key is refused at once and for good. */
export function RevokeKeyButton({ apiKey, onRevoked }: RevokeKeyButtonProps) {
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const cancel = useRef<HTMLButtonElement>(null);
  const start = useRef<HTMLButtonElement>(null);
  const wasConfirming = useRef(false);

  useEffect(() => {
    if (confirming) cancel.current?.focus();
    else if (wasConfirming.current) start.current?.focus();
    wasConfirming.current = confirming;
  }, [confirming]);

  async function revoke(): Promise<void> {
    setBusy(true);
    setError(null);
    try {
      onRevoked(await revokeApiKey(apiKey.id));
    } catch (failure) {
      setError(failure);
      setBusy(false);
    }
  }

  if (!confirming) {
    return (
      <button
        className="button"
        ref={start}
        type="button"
        aria-label={`Revoke ${apiKey.name}`}
        onClick={() => setConfirming(true)}
      >
        Revoke
      </button>
    );
  }
  return (
    <div
      role="group"
      aria-label={`Confirm revoking ${apiKey.name}`}
      className="admin-confirm"
      onKeyDown={(e) => {
        if (e.key === 'Escape') setConfirming(false);
      }}
    >
      <p>Revoke “{apiKey.name}”? Every request with this key is refused from now on.</p>
      <button
        type="button"
        className="button admin-danger"
        disabled={busy}
        onClick={() => void revoke()}
      >
        Yes, revoke {apiKey.name}
      </button>
      <button
        className="button"
        ref={cancel}
        type="button"
        disabled={busy}
        onClick={() => setConfirming(false)}
      >
        Keep the key
      </button>
      {error !== null && <ErrorMessage error={error} context="The key was not revoked" />}
    </div>
  );
}

import { useState } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { useSessionStore } from '@/stores/session';
import { logout } from '../api/session';

/** Ends the session on the server, then forgets the user and every cached answer. */
export function LogoutButton() {
  const clearSession = useSessionStore((state) => state.clearSession);
  const queryClient = useQueryClient();
  const [pending, setPending] = useState(false);

  async function onClick() {
    setPending(true);
    try {
      await logout();
    } catch {
      // Whatever the server says, this tab no longer acts for the user.
    }
    queryClient.clear();
    clearSession('You have signed out.');
  }

  return (
    <button type="button" className="button" onClick={() => void onClick()} disabled={pending}>
      Log out
    </button>
  );
}

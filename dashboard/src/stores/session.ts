import { create } from 'zustand';

export interface SessionUser {
  username: string;
  permissions: string[];
}

/** `unknown` until `GET /api/auth/session` has answered on load. */
export type SessionStatus = 'unknown' | 'authenticated' | 'anonymous';

export interface SessionState {
  user: SessionUser | null;
  /** Kept in memory only; sent as `X-CSRF-Token` on every state-changing request. */
  csrfToken: string | null;
  status: SessionStatus;
  /** Why the session ended, shown once on the login page (e.g. "Your session has ended"). */
  notice: string | null;
  setSession: (user: SessionUser, csrfToken: string) => void;
  clearSession: (notice?: string | null) => void;
}

export const useSessionStore = create<SessionState>()((set) => ({
  user: null,
  csrfToken: null,
  status: 'unknown',
  notice: null,
  setSession: (user, csrfToken) =>
    set({ user, csrfToken, status: 'authenticated', notice: null }),
  clearSession: (notice = null) =>
    set({ user: null, csrfToken: null, status: 'anonymous', notice }),
}));

export function hasPermission(user: SessionUser | null, permission: string): boolean {
  return user !== null && user.permissions.includes(permission);
}

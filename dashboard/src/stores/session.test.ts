import { describe, expect, it } from 'vitest';
import { hasPermission, useSessionStore } from './session';

describe('useSessionStore', () => {
  it('starts unknown, holds a session, and forgets it with a notice', () => {
    expect(useSessionStore.getState().status).toBe('unknown');
    useSessionStore.getState().setSession({ username: 'ana', permissions: ['read'] }, 'csrf');
    expect(useSessionStore.getState()).toMatchObject({ status: 'authenticated', csrfToken: 'csrf', user: { username: 'ana' } });
    useSessionStore.getState().clearSession('bye');
    expect(useSessionStore.getState()).toMatchObject({ status: 'anonymous', csrfToken: null, user: null, notice: 'bye' });
  });

  it('checks permissions', () => {
    expect(hasPermission(null, 'admin')).toBe(false);
    expect(hasPermission({ username: 'a', permissions: ['read'] }, 'admin')).toBe(false);
    expect(hasPermission({ username: 'a', permissions: ['admin'] }, 'admin')).toBe(true);
  });
});

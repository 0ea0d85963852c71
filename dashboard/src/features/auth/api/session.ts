import { apiFetch } from '@/lib/api';
import type { SessionUser } from '@/stores/session';

export interface SessionData extends SessionUser {
  csrf_token: string;
}

export async function fetchSession(): Promise<SessionData> {
  return (await apiFetch<SessionData>('/api/auth/session')).data;
}

export async function login(username: string, password: string): Promise<SessionData> {
  return (await apiFetch<SessionData>('/api/auth/login', { method: 'POST', json: { username, password } })).data;
}

export async function logout(): Promise<void> {
  await apiFetch<undefined>('/api/auth/logout', { method: 'POST' });
}

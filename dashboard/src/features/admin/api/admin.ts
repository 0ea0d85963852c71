/** Calls to `/api/admin`: API keys and dashboard users (admin permission only). */
import { apiFetch } from '@/lib/api';

import type { ApiKey, ApiKeyInput, CreatedApiKey, User, UserInput } from '../types';

export interface KeyPage {
  keys: ApiKey[];
  total: number;
}

export async function listApiKeys(limit: number, offset: number): Promise<KeyPage> {
  const params = new URLSearchParams({ limit: String(limit), offset: String(offset) });
  const { data, meta } = await apiFetch<ApiKey[]>(`/api/admin/keys?${params.toString()}`);
  return { keys: data, total: typeof meta.total === 'number' ? meta.total : data.length };
}

export async function createApiKey(input: ApiKeyInput): Promise<CreatedApiKey> {
  const { data } = await apiFetch<CreatedApiKey>('/api/admin/keys', { method: 'POST', json: input });
  return data;
}

export async function revokeApiKey(id: string): Promise<ApiKey> {
  const { data } = await apiFetch<ApiKey>(`/api/admin/keys/${encodeURIComponent(id)}`, {
    method: 'DELETE',
  });
  return data;
}

export async function listUsers(): Promise<User[]> {
  const { data } = await apiFetch<User[]>('/api/admin/users');
  return data;
}

export async function createUser(input: UserInput): Promise<User> {
  const { data } = await apiFetch<User>('/api/admin/users', { method: 'POST', json: input });
  return data;
}

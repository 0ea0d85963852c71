/** API keys and dashboard users as the gateway's admin API renders them (gateway/domain.py). */

export const PERMISSIONS = ['read', 'write', 'admin'] as const;
export type Permission = (typeof PERMISSIONS)[number];

export interface ApiKey {
  id: string;
  name: string;
  owner: string;
  permissions: Permission[];
  rate_limit: number | null;
  rate_window_seconds: number | null;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
}

/** The answer to creating a key: the only time its secret is ever sent. */
export interface CreatedApiKey extends ApiKey {
  key: string;
}

export interface ApiKeyInput {
  name: string;
  owner: string;
  permissions: Permission[];
  expires_at?: string;
  rate_limit?: number;
  rate_window_seconds?: number;
}

export interface User {
  username: string;
  permissions: Permission[];
  created_at: string;
  disabled: boolean;
}

export interface UserInput {
  username: string;
  password: string;
  permissions: Permission[];
}

import { keepPreviousData, useQuery, useQueryClient } from '@tanstack/react-query';
import { useCallback } from 'react';

import { listApiKeys, listUsers } from '../api/admin';

const API_KEYS = ['admin', 'api-keys'] as const;
const USERS = ['admin', 'users'] as const;

/** One page of API keys; the page shown stays while the next one loads. */
export function useApiKeys(limit: number, offset: number) {
  return useQuery({
    queryKey: [...API_KEYS, limit, offset],
    queryFn: () => listApiKeys(limit, offset),
    placeholderData: keepPreviousData,
  });
}

/** Marks every page of API keys stale after a key is created or revoked. */
export function useReloadApiKeys(): () => void {
  const client = useQueryClient();
  return useCallback(() => void client.invalidateQueries({ queryKey: API_KEYS }), [client]);
}

/** Dashboard users. */
export function useUsers() {
  return useQuery({ queryKey: USERS, queryFn: listUsers });
}

/** Marks the user list stale after a user is created. */
export function useReloadUsers(): () => void {
  const client = useQueryClient();
  return useCallback(() => void client.invalidateQueries({ queryKey: USERS }), [client]);
}

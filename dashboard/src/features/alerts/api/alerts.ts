/** Calls to `/api/alerts`: the feed, one alert with its history, its lifecycle, silences. */
import { apiFetch } from '@/lib/api';

import type { Alert, AlertFilters, AlertWithHistory, Silence, SilenceInput } from '../types';

export const ALERT_STREAM_URL = '/api/alerts/stream';

export interface AlertPage {
  alerts: Alert[];
  total: number;
}

export function alertQuery(filters: AlertFilters, limit: number): string {
  const params = new URLSearchParams({ limit: String(limit) });
  if (filters.severity.length > 0) params.set('severity', filters.severity.join(','));
  if (filters.status.length > 0) params.set('status', filters.status.join(','));
  const source = filters.source.trim();
  if (source !== '') params.set('source', source);
  return params.toString();
}

export async function listAlerts(filters: AlertFilters, limit: number): Promise<AlertPage> {
  const { data, meta } = await apiFetch<Alert[]>(`/api/alerts?${alertQuery(filters, limit)}`);
  const total = typeof meta.total === 'number' ? meta.total : data.length;
  return { alerts: data, total };
}

export async function getAlert(id: string): Promise<AlertWithHistory> {
  const { data } = await apiFetch<AlertWithHistory>(`/api/alerts/${encodeURIComponent(id)}`);
  return data;
}

async function changeAlert(id: string, action: 'ack' | 'resolve', note: string): Promise<Alert> {
  const comment = note.trim();
  const { data } = await apiFetch<Alert>(`/api/alerts/${encodeURIComponent(id)}/${action}`, {
    method: 'POST',
    json: comment === '' ? {} : { comment },
  });
  return data;
}

export function acknowledgeAlert(id: string, note = ''): Promise<Alert> {
  return changeAlert(id, 'ack', note);
}

export function resolveAlert(id: string, note = ''): Promise<Alert> {
  return changeAlert(id, 'resolve', note);
}

export async function commentOnAlert(id: string, text: string): Promise<Alert> {
  const { data } = await apiFetch<Alert>(`/api/alerts/${encodeURIComponent(id)}/comments`, {
    method: 'POST',
    json: { text },
  });
  return data;
}

export async function createSilence(input: SilenceInput): Promise<Silence> {
  const { data } = await apiFetch<Silence>('/api/alerts/silences', { method: 'POST', json: input });
  return data;
}

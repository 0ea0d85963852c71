import { apiFetch, toQuery } from '@/lib/api';
import { daysAgo } from '@/lib/format';
import type { Resource, ResourceAlert, ResourceFilters, UtilizationSample } from '../types';

export const PAGE_SIZE = 100;

export interface ResourcePage {
  items: Resource[];
  total: number;
  offset: number;
}

export async function fetchResourcePage(filters: ResourceFilters, offset: number, signal?: AbortSignal): Promise<ResourcePage> {
  const query = toQuery({ ...filters, limit: PAGE_SIZE, offset, sort: filters.sort ?? 'name' });
  const { data, meta } = await apiFetch<Resource[]>(`/api/resources${query}`, { signal });
  return { items: data, total: typeof meta.total === 'number' ? meta.total : data.length, offset };
}

export async function fetchUtilization(id: string): Promise<UtilizationSample[]> {
  const query = toQuery({ start: `${daysAgo(7)}T00:00:00Z` });
  return (await apiFetch<UtilizationSample[]>(`/api/resources/${encodeURIComponent(id)}/utilization${query}`)).data;
}

export interface ResourceCostDay {
  date: string;
  currency: string;
  cost: string;
}

export interface ResourceCost {
  /** Billed cost per day and currency, oldest first. */
  days: ResourceCostDay[];
  /** The exact total per currency, as the API sums it (decimal strings). */
  totals: Record<string, string>;
}

type ResourceCostRow = { date: string; currency: string; cost: string };

/**
 * One resource's daily cost over the last 30 days (today included): billing rows carry the
 * inventory's external id as their FOCUS ResourceId, so the report is filtered by it.
 */
export async function fetchCostByResource(externalId: string): Promise<ResourceCost> {
  const query = toQuery({ group_by: 'none', resource: externalId, start: daysAgo(29) });
  const { data, meta } = await apiFetch<ResourceCostRow[]>(`/api/costs/daily${query}`);
  const totals = typeof meta.totals === 'object' && meta.totals !== null ? (meta.totals as Record<string, string>) : {};
  return { days: data.map(({ date, currency, cost }) => ({ date, currency, cost })), totals };
}

export async function fetchResourceAlerts(id: string): Promise<ResourceAlert[]> {
  const query = toQuery({ matcher: `resource_id=${id}`, limit: 20 });
  return (await apiFetch<ResourceAlert[]>(`/api/alerts${query}`)).data;
}

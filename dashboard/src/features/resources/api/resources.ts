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

type ResourceCostRow = { date: string; group: string | null; currency: string; cost: string };

/** Daily cost of every billed resource over 30 days (optionally one region), keyed by resource id. */
export async function fetchCostByResource(region?: string): Promise<Map<string, ResourceCostDay[]>> {
  const query = toQuery({ group_by: 'resource', start: daysAgo(29), region });
  const { data } = await apiFetch<ResourceCostRow[]>(`/api/costs/daily${query}`);
  const byResource = new Map<string, ResourceCostDay[]>();
  for (const { date, group, currency, cost } of data) {
    if (group === null) continue;
    const days = byResource.get(group) ?? [];
    days.push({ date, currency, cost });
    byResource.set(group, days);
  }
  return byResource;
}

export async function fetchResourceAlerts(id: string): Promise<ResourceAlert[]> {
  const query = toQuery({ matcher: `resource_id=${id}`, limit: 20 });
  return (await apiFetch<ResourceAlert[]>(`/api/alerts${query}`)).data;
}

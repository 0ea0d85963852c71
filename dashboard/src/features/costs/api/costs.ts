import { apiFetch, toQuery } from '@/lib/api';
import type {
  Budget,
  CostForecast,
  DailyCostItem,
  DailyCostMeta,
  DailyCostQuery,
  Invoice,
  RealtimeCosts,
  Recommendation,
} from '../types';

export async function fetchRealtime(): Promise<RealtimeCosts> {
  return (await apiFetch<RealtimeCosts>('/api/costs/realtime')).data;
}

export async function fetchBudgets(): Promise<Budget[]> {
  return (await apiFetch<Budget[]>('/api/costs/budgets?limit=100')).data;
}

/** Query string shared by the daily report and its CSV/FOCUS exports. */
export function dailyQueryString(query: DailyCostQuery): string {
  return toQuery({ ...query });
}

export async function fetchDaily(query: DailyCostQuery): Promise<{ items: DailyCostItem[]; meta: DailyCostMeta }> {
  const { data, meta } = await apiFetch<DailyCostItem[]>(`/api/costs/daily${dailyQueryString(query)}`);
  return { items: data, meta: meta as DailyCostMeta };
}

export async function fetchForecast(params: { basis?: string; horizon?: number } = {}): Promise<CostForecast> {
  return (await apiFetch<CostForecast>(`/api/costs/forecast${toQuery(params)}`)).data;
}

/** First day of the current UTC month, YYYY-MM-DD. */
export function monthStart(now: Date = new Date()): string {
  return `${now.getUTCFullYear()}-${String(now.getUTCMonth() + 1).padStart(2, '0')}-01`;
}

/** A budget's spend this month, in its basis and currency, over its scope. */
export async function fetchBudgetSpend(budget: Budget, now: Date = new Date()): Promise<string> {
  const scope: Partial<DailyCostQuery> = {};
  if (budget.scope === 'provider' && budget.scope_value) scope.provider = budget.scope_value;
  if (budget.scope === 'team' && budget.scope_value) scope.tag = `team:${budget.scope_value}`;
  if (budget.scope === 'tag' && budget.scope_key) scope.tag = `${budget.scope_key}:${budget.scope_value ?? ''}`;
  const { meta } = await fetchDaily({
    group_by: 'none',
    basis: budget.basis,
    currency: budget.currency,
    start: monthStart(now),
    end: now.toISOString().slice(0, 10),
    ...scope,
  });
  return meta.totals?.[budget.currency] ?? '0';
}

export async function fetchInvoices(): Promise<Invoice[]> {
  return (await apiFetch<Invoice[]>('/api/costs/invoices?limit=100')).data;
}

export async function fetchRecommendations(): Promise<{ items: Recommendation[]; totals: Record<string, string> }> {
  const { data, meta } = await apiFetch<Recommendation[]>('/api/costs/optimization');
  const totals = (meta.monthly_savings ?? {}) as Record<string, string | number>;
  return {
    items: data,
    totals: Object.fromEntries(Object.entries(totals).map(([currency, value]) => [currency, String(value)])),
  };
}

/** Money is a decimal string, as the API sends it. */
export type Money = string;
export type CurrencyAmounts = Record<string, Money>;

export type CostBasis = 'billed' | 'effective' | 'list' | 'contracted';
export const COST_BASES: CostBasis[] = ['billed', 'effective', 'list', 'contracted'];

/** The group_by dimensions of /api/costs/daily (tag:<key> is also accepted). */
export const COST_GROUPS = [
  'service_category',
  'service',
  'provider',
  'region',
  'account',
  'resource',
  'charge_category',
  'invoice',
  'none',
] as const;
export type CostGroup = (typeof COST_GROUPS)[number] | `tag:${string}`;

export interface RealtimeCosts {
  at: string;
  month: string;
  hourly_cost: CurrencyAmounts;
  month_to_date: CurrencyAmounts;
  projected_month_end: CurrencyAmounts;
  hours_left_in_month: Money;
}

export interface Budget {
  id: string;
  name: string;
  scope: 'all' | 'provider' | 'team' | 'tag';
  scope_key: string | null;
  scope_value: string | null;
  amount: Money;
  currency: string;
  basis: CostBasis;
}

export interface DailyCostItem {
  date: string;
  group: string | null;
  currency: string;
  cost: Money;
  line_items: number;
  resource?: { id: string; name: string } | null;
}

export interface DailyCostMeta {
  start?: string;
  end?: string;
  basis?: CostBasis;
  group_by?: string;
  totals?: CurrencyAmounts;
}

export interface ForecastPoint {
  date: string;
  point: Money;
  lower: Money;
  upper: Money;
}

export interface CostForecast {
  basis: CostBasis;
  horizon_days: number;
  model: string;
  currencies: Record<string, ForecastPoint[]>;
  message: string | null;
}

export interface DailyCostQuery {
  group_by?: CostGroup;
  basis?: CostBasis;
  start?: string;
  end?: string;
  provider?: string;
  service_category?: string;
  service?: string;
  region?: string;
  account?: string;
  currency?: string;
  tag?: string;
}

export interface Invoice {
  invoice_id: string;
  billing_account_id: string;
  billing_account_name: string | null;
  billing_period_start: string;
  billing_period_end: string;
  currency: string;
  billed_total: Money;
}

export interface Recommendation {
  rule: string;
  /** The inventory resource; null for billing rules about spend the inventory does not know (`unmanaged_spend`). */
  resource_id: string | null;
  external_id: string;
  name: string;
  evidence: Record<string, unknown>;
  monthly_savings: Money;
  currency: string;
}

import { useQuery } from '@tanstack/react-query';
import { ErrorMessage, Loading } from '@/components';
import { formatMoney } from '@/lib/format';
import { fetchRealtime } from '../api/costs';
import type { CurrencyAmounts, RealtimeCosts } from '../types';
import { BudgetList } from './BudgetList';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Amounts per currency; a figure the answer lacks (or sends in another form) shows as a dash. */
function amounts(values: CurrencyAmounts | undefined): string {
  if (!isRecord(values)) return '—';
  const entries = Object.entries(values).filter(([, value]) => typeof value === 'string' || typeof value === 'number');
  if (entries.length === 0) return formatMoney(0);
  return entries.map(([currency, value]) => formatMoney(value, currency)).join(' · ');
}

/** Spend right now, this month so far and projected to month end, with budgets below. */
export function CostSummary() {
  const realtime = useQuery({ queryKey: ['costs', 'realtime'], queryFn: fetchRealtime, refetchInterval: 60_000 });
  // The figures are read field by field: an answer without some of them still shows the rest.
  const figures: Partial<RealtimeCosts> | undefined = realtime.isSuccess ? (isRecord(realtime.data) ? realtime.data : {}) : undefined;
  return (
    <section className="card cost-summary" aria-labelledby="cost-summary-heading">
      <h2 id="cost-summary-heading">Cost summary</h2>
      {realtime.isPending && <Loading label="Loading costs…" />}
      {realtime.isError && <ErrorMessage error={realtime.error} context="Could not load costs" />}
      {figures && (
        <dl className="stats">
          <div className="stat">
            <dt>Per hour now</dt>
            <dd>{amounts(figures.hourly_cost)}</dd>
          </div>
          <div className="stat">
            <dt>Month to date</dt>
            <dd>{amounts(figures.month_to_date)}</dd>
          </div>
          <div className="stat">
            <dt>Projected month end</dt>
            <dd>{amounts(figures.projected_month_end)}</dd>
          </div>
        </dl>
      )}
      <BudgetList />
    </section>
  );
}

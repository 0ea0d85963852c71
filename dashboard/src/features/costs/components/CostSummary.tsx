import { useQuery } from '@tanstack/react-query';
import { ErrorMessage, Loading } from '@/components';
import { formatMoney } from '@/lib/format';
import { fetchRealtime } from '../api/costs';
import { BudgetList } from './BudgetList';

function amounts(values: Record<string, string>): string {
  const entries = Object.entries(values);
  if (entries.length === 0) return formatMoney(0);
  return entries.map(([currency, value]) => formatMoney(value, currency)).join(' · ');
}

/** Spend right now, this month so far and projected to month end, with budgets below. */
export function CostSummary() {
  const realtime = useQuery({ queryKey: ['costs', 'realtime'], queryFn: fetchRealtime, refetchInterval: 60_000 });
  return (
    <section className="card cost-summary" aria-labelledby="cost-summary-heading">
      <h2 id="cost-summary-heading">Cost summary</h2>
      {realtime.isPending && <Loading label="Loading costs…" />}
      {realtime.isError && <ErrorMessage error={realtime.error} context="Could not load costs" />}
      {realtime.data && (
        <dl className="stats">
          <div className="stat">
            <dt>Per hour now</dt>
            <dd>{amounts(realtime.data.hourly_cost)}</dd>
          </div>
          <div className="stat">
            <dt>Month to date</dt>
            <dd>{amounts(realtime.data.month_to_date)}</dd>
          </div>
          <div className="stat">
            <dt>Projected month end</dt>
            <dd>{amounts(realtime.data.projected_month_end)}</dd>
          </div>
        </dl>
      )}
      <BudgetList />
    </section>
  );
}

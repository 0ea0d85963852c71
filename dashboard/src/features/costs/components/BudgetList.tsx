import { useQuery } from '@tanstack/react-query';
import { EmptyState, ErrorMessage, Loading } from '@/components';
import { formatMoney } from '@/lib/format';
import { fetchBudgetSpend, fetchBudgets } from '../api/costs';
import type { Budget } from '../types';

function scopeLabel(budget: Budget): string {
  if (budget.scope === 'all') return 'all spend';
  if (budget.scope === 'tag') return `tag ${budget.scope_key ?? ''}=${budget.scope_value ?? ''}`;
  return `${budget.scope} ${budget.scope_value ?? ''}`;
}

export function BudgetProgress({ budget }: { budget: Budget }) {
  const spend = useQuery({
    queryKey: ['costs', 'budget-spend', budget.id, budget.basis, budget.currency],
    queryFn: () => fetchBudgetSpend(budget),
  });
  const limit = Number(budget.amount);
  const spent = spend.data === undefined ? 0 : Number(spend.data);
  const percent = limit > 0 ? (spent / limit) * 100 : 0;
  const labelId = `budget-${budget.id}`;
  const tone = percent >= 100 ? 'bad' : percent >= 80 ? 'warn' : 'ok';
  return (
    <li className="budget">
      <div className="budget__head">
        <span id={labelId} className="budget__name">
          {budget.name} <span className="muted">({scopeLabel(budget)}, {budget.basis})</span>
        </span>
        <span className="budget__figures">
          {spend.isError
            ? 'spend unavailable'
            : `${formatMoney(spend.data ?? '0', budget.currency)} of ${formatMoney(budget.amount, budget.currency)} (${percent.toFixed(0)}%)`}
        </span>
      </div>
      <progress
        className={`budget__bar budget__bar--${tone}`}
        aria-labelledby={labelId}
        max={100}
        value={Math.min(percent, 100)}
      />
    </li>
  );
}

/** This month's spend against each budget, as progress bars. */
export function BudgetList() {
  const budgets = useQuery({ queryKey: ['costs', 'budgets'], queryFn: fetchBudgets });
  return (
    <div className="budgets">
      <h3>Budgets this month</h3>
      {budgets.isPending && <Loading label="Loading budgets…" />}
      {budgets.isError && <ErrorMessage error={budgets.error} context="Could not load budgets" />}
      {budgets.data && budgets.data.length === 0 && <EmptyState title="No budgets yet" />}
      {budgets.data && budgets.data.length > 0 && (
        <ul className="budget-list">
          {budgets.data.map((budget) => (
            <BudgetProgress key={budget.id} budget={budget} />
          ))}
        </ul>
      )}
    </div>
  );
}

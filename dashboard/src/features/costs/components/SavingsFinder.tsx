import { useMutation } from '@tanstack/react-query';
import { EmptyState, ErrorMessage, Loading } from '@/components';
import { fetchRecommendations } from '../api/costs';
import { RecommendationList } from './RecommendationList';

/** Runs the optimisation rules on demand and lists what they found. */
export function SavingsFinder() {
  const run = useMutation({ mutationFn: fetchRecommendations });
  return (
    <section className="card" aria-labelledby="savings-heading">
      <h2 id="savings-heading">Savings recommendations</h2>
      <p>Check the inventory and billing data for idle, oversized and unused resources.</p>
      <button
        type="button"
        className="button button--primary"
        data-testid="optimize-button"
        onClick={() => run.mutate()}
        disabled={run.isPending}
      >
        {run.data ? 'Check again' : 'Find savings'}
      </button>
      {run.isPending && <Loading label="Checking for savings…" />}
      {run.isError && <ErrorMessage error={run.error} context="Could not load recommendations" />}
      {run.data && run.data.items.length === 0 && (
        <div data-testid="recommendations">
          <EmptyState title="No recommendations">Nothing to save right now.</EmptyState>
        </div>
      )}
      {run.data && run.data.items.length > 0 && <RecommendationList items={run.data.items} totals={run.data.totals} />}
    </section>
  );
}

import { useQuery } from '@tanstack/react-query';
import { EmptyState, ErrorMessage, Loading } from '@/components';
import { formatMoney } from '@/lib/format';
import { fetchResourceCost } from '../api/resources';

/** The resource's billed cost per day over the last 30 days, newest first. */
export function ResourceCostHistory({ externalId }: { externalId: string }) {
  const days = useQuery({ queryKey: ['resources', 'cost', externalId], queryFn: () => fetchResourceCost(externalId) });
  const total = (days.data ?? []).reduce((sum, day) => sum + Number(day.cost), 0);
  const currency = days.data?.[0]?.currency ?? 'USD';
  return (
    <section aria-labelledby="resource-cost-heading">
      <h3 id="resource-cost-heading">Cost (30 days)</h3>
      {days.isPending && <Loading label="Loading cost…" />}
      {days.isError && <ErrorMessage error={days.error} context="Could not load cost" />}
      {days.data && days.data.length === 0 && <EmptyState title="No billed cost for this resource" />}
      {days.data && days.data.length > 0 && (
        <>
          <p>
            Total: <strong>{formatMoney(total, currency)}</strong>
          </p>
          <div className="table-wrap table-wrap--short">
            <table className="table table--compact" aria-label="Cost per day">
              <thead>
                <tr>
                  <th scope="col">Day</th>
                  <th scope="col" className="num">
                    Cost
                  </th>
                </tr>
              </thead>
              <tbody>
                {[...days.data].reverse().map((day) => (
                  <tr key={`${day.date}-${day.currency}`}>
                    <td>{day.date}</td>
                    <td className="num">{formatMoney(day.cost, day.currency)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}

import { useQuery } from '@tanstack/react-query';
import { EmptyState, ErrorMessage, Loading } from '@/components';
import { formatMoney } from '@/lib/format';
import { fetchCostByResource } from '../api/resources';

/** The resource's billed cost per day over the last 30 days, newest first, with the API's total. */
export function ResourceCostHistory({ externalId }: { externalId: string }) {
  const cost = useQuery({ queryKey: ['resources', 'cost', externalId], queryFn: () => fetchCostByResource(externalId) });
  const days = cost.data?.days;
  const totals = Object.entries(cost.data?.totals ?? {});
  return (
    <section aria-labelledby="resource-cost-heading">
      <h3 id="resource-cost-heading">Cost (30 days)</h3>
      {cost.isPending && <Loading label="Loading cost…" />}
      {cost.isError && <ErrorMessage error={cost.error} context="Could not load cost" />}
      {days && days.length === 0 && <EmptyState title="No billed cost for this resource" />}
      {days && days.length > 0 && (
        <>
          {totals.length > 0 && (
            <p>
              Total:{' '}
              {totals.map(([currency, total], index) => (
                <span key={currency}>
                  {index > 0 && ' · '}
                  <strong>{formatMoney(total, currency)}</strong>
                </span>
              ))}
            </p>
          )}
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
                {[...days].reverse().map((day) => (
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

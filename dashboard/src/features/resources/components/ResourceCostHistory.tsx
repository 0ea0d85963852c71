import { useQuery } from '@tanstack/react-query';
import { EmptyState, ErrorMessage, Loading } from '@/components';
import { formatMoney } from '@/lib/format';
import { fetchCostByResource, type ResourceCostDay } from '../api/resources';

// The API has no filter for one resource: the report by resource (billing rows carry the
// inventory's external id as ResourceId) is fetched per region, shared by every resource of that
// region for five minutes, and searched in full only when the region's report lacks the resource.
const SHARED = { staleTime: 5 * 60_000, gcTime: 10 * 60_000 };

function useResourceCost(externalId: string, region: string) {
  const inRegion = useQuery({
    queryKey: ['costs', 'daily-by-resource', region],
    queryFn: () => fetchCostByResource(region),
    ...SHARED,
  });
  const missing = inRegion.data !== undefined && !inRegion.data.has(externalId);
  const everywhere = useQuery({
    queryKey: ['costs', 'daily-by-resource', null],
    queryFn: () => fetchCostByResource(),
    enabled: missing,
    ...SHARED,
  });
  const source = missing ? everywhere : inRegion;
  const days: ResourceCostDay[] | undefined = source.data ? (source.data.get(externalId) ?? []) : undefined;
  return { days, isPending: inRegion.isPending || (missing && everywhere.isPending), error: inRegion.error ?? everywhere.error };
}

/** The resource's billed cost per day over the last 30 days, newest first. */
export function ResourceCostHistory({ externalId, region }: { externalId: string; region: string }) {
  const { days, isPending, error } = useResourceCost(externalId, region);
  const total = (days ?? []).reduce((sum, day) => sum + Number(day.cost), 0);
  const currency = days?.[0]?.currency ?? 'USD';
  return (
    <section aria-labelledby="resource-cost-heading">
      <h3 id="resource-cost-heading">Cost (30 days)</h3>
      {isPending && <Loading label="Loading cost…" />}
      {error !== null && <ErrorMessage error={error} context="Could not load cost" />}
      {days && days.length === 0 && <EmptyState title="No billed cost for this resource" />}
      {days && days.length > 0 && (
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

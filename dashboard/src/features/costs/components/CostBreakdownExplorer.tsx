import { useQuery } from '@tanstack/react-query';
import { useMemo } from 'react';
import { useSearchParams } from 'react-router';
import { EmptyState, ErrorMessage, Field, Loading } from '@/components';
import { Chart } from '@/components/charts';
import { compareDecimals, sumDecimals } from '@/lib/decimal';
import { daysAgo, formatMoney, isoDay } from '@/lib/format';
import { dailyQueryString, fetchDaily } from '../api/costs';
import { buildDailyCostOption } from './DailyCostChart';
import { COST_BASES, COST_GROUPS, type CostBasis, type CostGroup, type DailyCostItem, type DailyCostQuery } from '../types';

const GROUP_LABELS: Record<string, string> = {
  service_category: 'Service category',
  service: 'Service',
  provider: 'Provider',
  region: 'Region',
  account: 'Billing account',
  resource: 'Resource',
  charge_category: 'Charge category',
  invoice: 'Invoice',
  none: 'Nothing (total)',
};

export interface BreakdownRow {
  group: string;
  currency: string;
  /** The exact sum of the group's daily costs (a decimal string); null if one was not a number. */
  total: string | null;
  lineItems: number;
}

/**
 * Sums the daily rows per group and currency, largest first. The API totals only per currency,
 * so a group's total is added up here, exactly (integer minor units, see lib/decimal).
 */
export function summarise(items: DailyCostItem[]): BreakdownRow[] {
  const groups = new Map<string, { group: string; currency: string; costs: string[]; lineItems: number }>();
  for (const item of items) {
    const group = item.resource?.name ?? item.group ?? '(none)';
    const key = `${group}\u0000${item.currency}`;
    const entry = groups.get(key) ?? { group, currency: item.currency, costs: [], lineItems: 0 };
    entry.costs.push(item.cost);
    entry.lineItems += item.line_items;
    groups.set(key, entry);
  }
  return [...groups.values()]
    .map(({ group, currency, costs, lineItems }) => ({ group, currency, total: sumDecimals(costs), lineItems }))
    .sort((a, b) => compareDecimals(b.total ?? '0', a.total ?? '0'));
}

function useExplorerQuery(): [DailyCostQuery, (patch: Partial<Record<keyof DailyCostQuery, string>>) => void] {
  const [params, setParams] = useSearchParams();
  const query: DailyCostQuery = {
    group_by: (params.get('group_by') ?? 'service_category') as CostGroup,
    basis: (params.get('basis') ?? 'billed') as CostBasis,
    start: params.get('start') ?? daysAgo(29),
    end: params.get('end') ?? isoDay(new Date()),
  };
  const update = (patch: Partial<Record<keyof DailyCostQuery, string>>) => {
    setParams(
      (previous) => {
        const next = new URLSearchParams(previous);
        for (const [key, value] of Object.entries(patch)) {
          if (value) next.set(key, value);
          else next.delete(key);
        }
        return next;
      },
      { replace: true },
    );
  };
  return [query, update];
}

/** Cost grouped by any dimension, in any basis, over a date range; with CSV and FOCUS exports. */
export function CostBreakdownExplorer() {
  const [query, update] = useExplorerQuery();
  const report = useQuery({ queryKey: ['costs', 'daily', query], queryFn: () => fetchDaily(query) });
  const rows = useMemo(() => (report.data ? summarise(report.data.items) : []), [report.data]);
  const option = useMemo(
    () => (report.data && report.data.items.length > 0 ? buildDailyCostOption(report.data.items, undefined) : null),
    [report.data],
  );
  const search = dailyQueryString(query);
  const invalidRange = Boolean(query.start && query.end && query.start > query.end);

  return (
    <section className="card" aria-labelledby="breakdown-heading">
      <h2 id="breakdown-heading">Cost breakdown</h2>
      <form className="toolbar" onSubmit={(event) => event.preventDefault()} aria-label="Breakdown options">
        <Field label="Group by">
          {(id) => (
            <select id={id} value={query.group_by} onChange={(event) => update({ group_by: event.target.value })}>
              {COST_GROUPS.map((group) => (
                <option key={group} value={group}>
                  {GROUP_LABELS[group] ?? group}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Cost basis">
          {(id) => (
            <select id={id} value={query.basis} onChange={(event) => update({ basis: event.target.value })}>
              {COST_BASES.map((basis) => (
                <option key={basis} value={basis}>
                  {basis}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="From">
          {(id) => (
            <input id={id} type="date" value={query.start} max={query.end} onChange={(event) => update({ start: event.target.value })} />
          )}
        </Field>
        <Field label="To">
          {(id) => (
            <input id={id} type="date" value={query.end} min={query.start} onChange={(event) => update({ end: event.target.value })} />
          )}
        </Field>
      </form>
      <p className="export-links">
        Export this view:{' '}
        <a href={`/api/costs/export/daily.csv${search}`} download>
          Daily CSV
        </a>{' '}
        ·{' '}
        <a href={`/api/costs/export/focus.csv${search}`} download>
          FOCUS CSV
        </a>
      </p>
      {invalidRange && <p role="alert" className="error-message">The start date must not be after the end date.</p>}
      {report.isPending && <Loading label="Loading breakdown…" />}
      {report.isError && <ErrorMessage error={report.error} context="Could not load the breakdown" />}
      {report.data && rows.length === 0 && <EmptyState title="No costs in this range" />}
      {option && <Chart option={option} label={`Daily ${query.basis} cost grouped by ${GROUP_LABELS[query.group_by ?? ''] ?? query.group_by}`} />}
      {report.data && rows.length > 0 && (
        <div className="table-wrap">
          <table className="table" aria-label="Cost breakdown">
            <thead>
              <tr>
                <th scope="col">{GROUP_LABELS[query.group_by ?? ''] ?? query.group_by}</th>
                <th scope="col" className="num">
                  Total ({query.basis})
                </th>
                <th scope="col" className="num">
                  Line items
                </th>
              </tr>
            </thead>
            <tbody>
              {rows.map((row) => (
                <tr key={`${row.group}-${row.currency}`}>
                  <td>{row.group}</td>
                  <td className="num">{formatMoney(row.total, row.currency)}</td>
                  <td className="num">{row.lineItems.toLocaleString('en-US')}</td>
                </tr>
              ))}
            </tbody>
            <tfoot>
              {Object.entries(report.data.meta.totals ?? {}).map(([currency, total]) => (
                <tr key={currency}>
                  <th scope="row">Total {currency}</th>
                  <td className="num" data-testid={`breakdown-total-${currency}`}>
                    {formatMoney(total, currency)}
                  </td>
                  <td />
                </tr>
              ))}
            </tfoot>
          </table>
        </div>
      )}
    </section>
  );
}

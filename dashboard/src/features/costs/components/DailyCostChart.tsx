import { useQuery } from '@tanstack/react-query';
import { useEffect, useMemo } from 'react';
import { EmptyState, ErrorMessage, Loading } from '@/components';
import { axisTextColour, Chart, gridLineColour, preloadCharts, prefersReducedMotion, SERIES_COLOURS, type ChartOption } from '@/components/charts';
import { sumDecimals } from '@/lib/decimal';
import { daysAgo } from '@/lib/format';
import { fetchDaily, fetchForecast } from '../api/costs';
import type { CostForecast, DailyCostItem } from '../types';

const OTHER_GROUPS = 'All other';

function label(item: DailyCostItem): string {
  return item.resource?.name ?? item.group ?? '(none)';
}

/** Keeps the largest groups and adds the rest up as one, so a chart by resource stays readable. */
export function foldSmallGroups(items: DailyCostItem[], maxGroups: number): DailyCostItem[] {
  const totals = new Map<string, number>();
  for (const item of items) totals.set(label(item), (totals.get(label(item)) ?? 0) + Number(item.cost));
  if (totals.size <= maxGroups) return items.map((item) => ({ ...item, group: label(item) }));
  const kept = new Set(
    [...totals.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, maxGroups - 1)
      .map(([group]) => group),
  );
  const folded = new Map<string, DailyCostItem>();
  for (const item of items) {
    const group = kept.has(label(item)) ? label(item) : OTHER_GROUPS;
    const key = `${item.date}\u0000${group}`;
    const existing = folded.get(key);
    if (existing) {
      existing.cost = sumDecimals([existing.cost, item.cost]) ?? existing.cost;
      existing.line_items += item.line_items;
    } else {
      folded.set(key, { ...item, group, resource: null });
    }
  }
  return [...folded.values()];
}

/** Builds the stacked daily bars plus the forecast line and its 80% band, in one currency. */
export function buildDailyCostOption(
  items: DailyCostItem[],
  forecast: CostForecast | undefined,
  maxGroups = 10,
): ChartOption | null {
  const currency = items[0]?.currency ?? Object.keys(forecast?.currencies ?? {})[0];
  if (!currency) return null;
  const mine = foldSmallGroups(
    items.filter((item) => item.currency === currency),
    maxGroups,
  );
  const points = forecast?.currencies[currency] ?? [];
  const days = Array.from(new Set([...mine.map((item) => item.date), ...points.map((p) => p.date)])).sort();
  const index = new Map(days.map((day, i) => [day, i]));
  const groups = Array.from(new Set(mine.map((item) => item.group ?? '(none)'))).sort();
  const bars = groups.map((group, i) => {
    const values: (number | null)[] = days.map(() => null);
    for (const item of mine) {
      if ((item.group ?? '(none)') === group) values[index.get(item.date) ?? 0] = Number(item.cost);
    }
    return {
      type: 'bar' as const,
      name: group,
      stack: 'cost',
      data: values,
      itemStyle: { color: SERIES_COLOURS[i % SERIES_COLOURS.length] },
    };
  });
  const lower: (number | null)[] = days.map(() => null);
  const band: (number | null)[] = days.map(() => null);
  const point: (number | null)[] = days.map(() => null);
  for (const p of points) {
    const i = index.get(p.date) ?? 0;
    lower[i] = Number(p.lower);
    band[i] = Number(p.upper) - Number(p.lower);
    point[i] = Number(p.point);
  }
  const text = axisTextColour();
  const forecastSeries = points.length
    ? [
        { type: 'line' as const, name: '80% band low', stack: 'band', data: lower, symbol: 'none', lineStyle: { opacity: 0 }, silent: true, tooltip: { show: false } },
        {
          type: 'line' as const,
          name: 'Forecast 80% band',
          stack: 'band',
          data: band,
          symbol: 'none',
          lineStyle: { opacity: 0 },
          areaStyle: { color: 'rgba(47, 111, 223, 0.25)' },
          itemStyle: { color: 'rgba(47, 111, 223, 0.35)' },
          silent: true,
        },
        { type: 'line' as const, name: 'Forecast', data: point, symbol: 'none', lineStyle: { type: 'dashed' as const, width: 2, color: '#2f6fdf' }, itemStyle: { color: '#2f6fdf' } },
      ]
    : [];
  return {
    animation: !prefersReducedMotion(),
    tooltip: { trigger: 'axis', valueFormatter: (value) => (typeof value === 'number' ? `${value.toFixed(2)} ${currency}` : '') },
    legend: { type: 'scroll', top: 0, textStyle: { color: text }, data: [...groups, ...(points.length ? ['Forecast', 'Forecast 80% band'] : [])] },
    grid: { left: 56, right: 16, top: 40, bottom: 32 },
    xAxis: { type: 'category', data: days, axisLabel: { color: text } },
    yAxis: { type: 'value', name: currency, nameTextStyle: { color: text }, axisLabel: { color: text }, splitLine: { lineStyle: { color: gridLineColour() } } },
    series: [...bars, ...forecastSeries],
  };
}

/** Daily cost of the last 30 days by service category, and the 30-day forecast with its 80% band. */
export function DailyCostChart() {
  useEffect(preloadCharts, []);
  const daily = useQuery({
    queryKey: ['costs', 'daily', 'overview'],
    queryFn: () => fetchDaily({ group_by: 'service_category', start: daysAgo(29) }),
  });
  const forecast = useQuery({ queryKey: ['costs', 'forecast', 30], queryFn: () => fetchForecast({ horizon: 30 }) });
  // Drawn once both answers are in (or the forecast failed): one chart render instead of two.
  const forecastSettled = !forecast.isPending;
  const option = useMemo(
    () => (daily.data && forecastSettled ? buildDailyCostOption(daily.data.items, forecast.data) : null),
    [daily.data, forecast.data, forecastSettled],
  );
  return (
    <section className="card" aria-labelledby="daily-cost-heading" data-testid="daily-cost-chart">
      <h2 id="daily-cost-heading">Daily cost by service category</h2>
      {(daily.isPending || (daily.data && !forecastSettled)) && <Loading label="Loading daily costs…" />}
      {daily.isError && <ErrorMessage error={daily.error} context="Could not load daily costs" />}
      {forecast.isError && <ErrorMessage error={forecast.error} context="Could not load the forecast" />}
      {forecast.data?.message && <p className="muted">{forecast.data.message}</p>}
      {daily.data && forecastSettled && !option && <EmptyState title="No cost data yet">Import a FOCUS billing file to see daily costs.</EmptyState>}
      {option && (
        <Chart option={option} label="Daily cost of the last 30 days stacked by service category, with a 30-day forecast and its 80% band" />
      )}
    </section>
  );
}

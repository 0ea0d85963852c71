import { useQuery } from '@tanstack/react-query';
import { EmptyState, ErrorMessage, Loading } from '@/components';
import { axisTextColour, Chart, gridLineColour, prefersReducedMotion, type ChartOption } from '@/components/charts';
import { ApiError } from '@/lib/api';
import { fetchUtilization } from '../api/resources';
import type { UtilizationSample } from '../types';

export function utilizationOption(samples: UtilizationSample[]): ChartOption {
  const text = axisTextColour();
  return {
    animation: !prefersReducedMotion(),
    tooltip: { trigger: 'axis' },
    legend: { top: 0, textStyle: { color: text } },
    grid: { left: 40, right: 12, top: 32, bottom: 28 },
    xAxis: { type: 'category', data: samples.map((s) => s.timestamp.slice(5, 16).replace('T', ' ')), axisLabel: { color: text } },
    yAxis: { type: 'value', min: 0, max: 100, axisLabel: { color: text, formatter: '{value}%' }, splitLine: { lineStyle: { color: gridLineColour() } } },
    series: [
      { type: 'line', name: 'CPU', data: samples.map((s) => Number(s.cpu_percent)), symbol: 'none', itemStyle: { color: '#2f6fdf' } },
      { type: 'line', name: 'Memory', data: samples.map((s) => Number(s.memory_percent)), symbol: 'none', itemStyle: { color: '#d9480f' } },
    ],
  };
}

/** CPU and memory over the last week; an empty state where no samples (or no endpoint) exist. */
export function UtilizationHistory({ resourceId }: { resourceId: string }) {
  const samples = useQuery({ queryKey: ['resources', 'utilization', resourceId], queryFn: () => fetchUtilization(resourceId) });
  const missing = samples.error instanceof ApiError && samples.error.status === 404;
  return (
    <section aria-labelledby="utilization-heading">
      <h3 id="utilization-heading">Utilisation (7 days)</h3>
      {samples.isPending && <Loading label="Loading utilisation…" />}
      {samples.isError && !missing && <ErrorMessage error={samples.error} context="Could not load utilisation" />}
      {(missing || (samples.data && samples.data.length === 0)) && <EmptyState title="No utilisation samples yet" />}
      {samples.data && samples.data.length > 0 && (
        <Chart option={utilizationOption(samples.data)} label="CPU and memory utilisation over the last 7 days" className="chart--small" />
      )}
    </section>
  );
}

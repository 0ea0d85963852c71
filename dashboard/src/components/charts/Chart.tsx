import { lazy, Suspense } from 'react';
import { Loading } from '../Loading';
import type { ChartOption } from './types';

const loadChartCore = () => import('./EChartCore');
const EChartCore = lazy(loadChartCore);

/** Starts downloading the chart code now, e.g. while a chart's data is still loading. */
export function preloadCharts(): void {
  void loadChartCore();
}

export interface ChartProps {
  option: ChartOption;
  /** What the chart shows, for screen readers (the canvas itself is not readable). */
  label: string;
  className?: string;
}

/** A canvas chart, its code loaded on first use. */
export function Chart({ option, label, className }: ChartProps) {
  return (
    <figure className={`chart ${className ?? ''}`} aria-label={label} role="img">
      <Suspense fallback={<Loading label="Loading chart…" />}>
        <EChartCore option={option} className="chart__canvas" />
      </Suspense>
    </figure>
  );
}

/** True when the user asked for less motion; charts then skip their animations. */
export function prefersReducedMotion(): boolean {
  return typeof window !== 'undefined' && typeof window.matchMedia === 'function'
    ? window.matchMedia('(prefers-reduced-motion: reduce)').matches
    : false;
}

export function prefersDark(): boolean {
  return typeof window !== 'undefined' && typeof window.matchMedia === 'function'
    ? window.matchMedia('(prefers-color-scheme: dark)').matches
    : false;
}

/** Colours readable on both themes' backgrounds. */
export const SERIES_COLOURS = [
  '#2f6fdf', '#e8590c', '#2b8a3e', '#ae3ec9', '#f2b705', '#1098ad', '#c2255c', '#5c940d', '#7048e8', '#868e96',
];

export function axisTextColour(): string {
  return prefersDark() ? '#d0d4da' : '#343a40';
}

export function gridLineColour(): string {
  return prefersDark() ? '#3a4048' : '#e0e6f1';
}

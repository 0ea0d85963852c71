export { axisTextColour, Chart, gridLineColour, prefersDark, preloadCharts, prefersReducedMotion, SERIES_COLOURS, type ChartProps } from './Chart';
export type { ChartOption } from './types';

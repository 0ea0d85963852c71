export { axisTextColour, Chart, prefersDark, prefersReducedMotion, SERIES_COLOURS, type ChartProps } from './Chart';
export type { ChartOption } from './types';

// Loaded lazily (see Chart.tsx) so the chart library stays out of the first download.
import { BarChart, LineChart } from 'echarts/charts';
import { GridComponent, LegendComponent, TooltipComponent } from 'echarts/components';
import * as echarts from 'echarts/core';
import { CanvasRenderer } from 'echarts/renderers';
import ReactEChartsCore from 'echarts-for-react/esm/core';
import type { ChartOption } from './types';

echarts.use([BarChart, LineChart, GridComponent, LegendComponent, TooltipComponent, CanvasRenderer]);

export interface EChartCoreProps {
  option: ChartOption;
  className?: string;
}

export default function EChartCore({ option, className }: EChartCoreProps) {
  return <ReactEChartsCore echarts={echarts} option={option} notMerge className={className} />;
}

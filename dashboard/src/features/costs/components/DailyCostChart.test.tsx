import { screen } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { ok, stubFetch } from '@/test/fetch';
import { renderWithProviders } from '@/test/render';
import type { DailyCostItem } from '../types';
import { buildDailyCostOption, DailyCostChart, foldSmallGroups } from './DailyCostChart';

const item = (date: string, group: string, cost: string): DailyCostItem => ({ date, group, currency: 'USD', cost, line_items: 1 });

describe('buildDailyCostOption', () => {
  it('stacks one bar series per group and adds the forecast with its band', () => {
    const option = buildDailyCostOption(
      [item('2026-11-01', 'Compute', '10'), item('2026-11-01', 'Storage', '5'), item('2026-11-02', 'Compute', '12')],
      {
        basis: 'billed',
        horizon_days: 1,
        model: '',
        message: null,
        currencies: { USD: [{ date: '2026-11-03', point: '13', lower: '11', upper: '15' }] },
      },
    );
    expect(option).not.toBeNull();
    const series = option?.series as { name: string; type: string; stack?: string; data: (number | null)[] }[];
    expect(series.map((s) => s.name)).toEqual(['Compute', 'Storage', '80% band low', 'Forecast 80% band', 'Forecast']);
    expect(series[0]?.data).toEqual([10, 12, null]);
    expect(series[1]?.data).toEqual([5, null, null]);
    expect(series[2]?.data).toEqual([null, null, 11]);
    expect(series[3]?.data).toEqual([null, null, 4]);
    expect(series[4]?.data).toEqual([null, null, 13]);
  });

  it('returns nothing without data', () => {
    expect(buildDailyCostOption([], undefined)).toBeNull();
  });

  it('adds the folded groups exactly', () => {
    const folded = foldSmallGroups([item('d', 'a', '9'), item('d', 'b', '0.10'), item('d', 'c', '0.20')], 2);
    expect(folded.find((row) => row.group === 'All other')?.cost).toBe('0.30');
  });

  it('folds the smallest groups into one', () => {
    const folded = foldSmallGroups(
      [item('d', 'a', '9'), item('d', 'b', '5'), item('d', 'c', '1'), item('d', 'e', '2')],
      3,
    );
    expect(folded.map((row) => [row.group, row.cost])).toEqual([
      ['a', '9'],
      ['b', '5'],
      ['All other', '3'],
    ]);
  });
});

describe('DailyCostChart', () => {
  it('draws the chart from the daily report and the forecast', async () => {
    const seen = stubFetch({
      '/api/costs/daily': ok([item('2026-11-01', 'Compute', '10')]),
      '/api/costs/forecast': ok({ basis: 'billed', horizon_days: 30, model: '', currencies: {}, message: 'USD: history too short' }),
    });
    renderWithProviders(<DailyCostChart />);
    expect(await screen.findByTestId('chart-canvas')).toBeInTheDocument();
    expect(screen.getByRole('img', { name: /stacked by service category/ })).toBeInTheDocument();
    expect(await screen.findByText('USD: history too short')).toBeInTheDocument();
    expect(seen.find((r) => r.url.pathname === '/api/costs/daily')?.url.searchParams.get('group_by')).toBe('service_category');
  });

  it('shows an empty state when nothing was imported', async () => {
    stubFetch({
      '/api/costs/daily': ok([]),
      '/api/costs/forecast': ok({ basis: 'billed', horizon_days: 30, model: '', currencies: {}, message: null }),
    });
    renderWithProviders(<DailyCostChart />);
    expect(await screen.findByText('No cost data yet')).toBeInTheDocument();
  });
});

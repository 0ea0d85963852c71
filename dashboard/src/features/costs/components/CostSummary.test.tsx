import { screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { ok, problem, stubFetch } from '@/test/fetch';
import { renderWithProviders } from '@/test/render';
import { CostSummary } from './CostSummary';

const realtime = {
  at: '2026-11-15T12:00:00Z',
  month: '2026-11',
  hourly_cost: { USD: '12.5000' },
  month_to_date: { USD: '4200.10' },
  projected_month_end: { USD: '9000.99' },
  hours_left_in_month: '372.00',
};

describe('CostSummary', () => {
  it('shows spend now, month to date, projection and budgets as progress bars', async () => {
    const seen = stubFetch({
      '/api/costs/realtime': ok(realtime),
      '/api/costs/budgets': ok([
        { id: 'b1', name: 'Platform', scope: 'team', scope_key: null, scope_value: 'platform', amount: '1000', currency: 'USD', basis: 'billed' },
      ]),
      '/api/costs/daily': ok([], { totals: { USD: '850.00' } }),
    });
    renderWithProviders(<CostSummary />);
    expect(await screen.findByText('$12.50')).toBeInTheDocument();
    expect(screen.getByText('$4,200.10')).toBeInTheDocument();
    expect(screen.getByText('$9,000.99')).toBeInTheDocument();
    const bar = await screen.findByRole('progressbar', { name: /Platform/ });
    expect(await screen.findByText('$850.00 of $1,000.00 (85%)')).toBeInTheDocument();
    expect(bar).toHaveAttribute('value', '85');
    const spendQuery = seen.find((request) => request.url.pathname === '/api/costs/daily');
    expect(spendQuery?.url.searchParams.get('tag')).toBe('team:platform');
    expect(spendQuery?.url.searchParams.get('group_by')).toBe('none');
  });

  it('shows an API failure with its request id, and an empty budget list', async () => {
    stubFetch({
      '/api/costs/realtime': problem(503, 'Service Unavailable', { detail: 'The costs service is down.', request_id: 'req-1' }),
      '/api/costs/budgets': ok([]),
    });
    renderWithProviders(<CostSummary />);
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('Could not load costs: Service Unavailable');
    expect(within(alert).getByText('req-1')).toBeInTheDocument();
    expect(await screen.findByText('No budgets yet')).toBeInTheDocument();
  });

  it.each([
    ['an empty list instead of the figures', [], ['—', '—', '—']],
    ['only some of the figures', { month_to_date: { USD: '10.00' }, hourly_cost: null }, ['—', '$10.00', '—']],
    ['no spend yet', { hourly_cost: {}, month_to_date: {}, projected_month_end: {} }, ['$0.00', '$0.00', '$0.00']],
  ])('shows what it can when the API answers %s', async (_case, answer, shown) => {
    stubFetch({ '/api/costs/realtime': ok(answer), '/api/costs/budgets': ok([]) });
    renderWithProviders(<CostSummary />);
    expect(await screen.findByText('No budgets yet')).toBeInTheDocument();
    const figures = await screen.findAllByRole('definition');
    expect(figures.map((figure) => figure.textContent)).toEqual(shown);
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();
  });
});

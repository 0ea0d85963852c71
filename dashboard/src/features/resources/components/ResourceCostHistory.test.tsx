import { screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { daysAgo } from '@/lib/format';
import { ok, problem, stubFetch } from '@/test/fetch';
import { renderWithProviders } from '@/test/render';
import { ResourceCostHistory } from './ResourceCostHistory';

const day = (date: string, currency: string, cost: string) => ({ date, group: null, currency, cost, line_items: 1 });

describe('ResourceCostHistory', () => {
  it("asks for the one resource's cost and shows the API's exact total per currency", async () => {
    const seen = stubFetch({
      '/api/costs/daily': (url) =>
        url.searchParams.get('resource') === 'i-0abc'
          ? ok([day('2026-11-01', 'USD', '0.10'), day('2026-11-02', 'USD', '0.20'), day('2026-11-02', 'EUR', '3.00')], {
              group_by: 'none',
              totals: { USD: '0.30', EUR: '3.00' },
            })
          : ok([day('2026-11-01', 'USD', '99.00')], { totals: { USD: '99.00' } }),
    });
    renderWithProviders(<ResourceCostHistory externalId="i-0abc" />);
    const section = await screen.findByRole('region', { name: 'Cost (30 days)' });
    expect(await within(section).findByText(/^Total:/)).toHaveTextContent('Total: $0.30 · €3.00');
    const rows = within(within(section).getByRole('table', { name: 'Cost per day' })).getAllByRole('row').slice(1);
    expect(rows.map((row) => row.textContent)).toEqual(['2026-11-02€3.00', '2026-11-02$0.20', '2026-11-01$0.10']);
    expect(seen).toHaveLength(1);
    const params = Object.fromEntries(seen[0]?.url.searchParams ?? []);
    expect(params).toEqual({ group_by: 'none', resource: 'i-0abc', start: daysAgo(29) });
  });

  it('says so when the resource was not billed, and shows a failed load', async () => {
    stubFetch({ '/api/costs/daily': ok([], { totals: {} }) });
    const { unmount } = renderWithProviders(<ResourceCostHistory externalId="i-new" />);
    expect(await screen.findByText('No billed cost for this resource')).toBeInTheDocument();
    unmount();

    stubFetch({ '/api/costs/daily': problem(503, 'Service Unavailable', { request_id: 'req-c' }) });
    renderWithProviders(<ResourceCostHistory externalId="i-new" />);
    expect(await screen.findByRole('alert')).toHaveTextContent('Could not load cost: Service Unavailable');
  });
});

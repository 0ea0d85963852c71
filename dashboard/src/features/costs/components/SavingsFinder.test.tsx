import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { ok, problem, stubFetch } from '@/test/fetch';
import { renderWithProviders } from '@/test/render';
import { SavingsFinder } from './SavingsFinder';

const rec = (rule: string, name: string, saving: string) => ({
  rule,
  resource_id: `${name}-id`,
  external_id: `ext-${name}`,
  name,
  evidence: { window_days: 14, max_cpu_percent: '3.1' },
  monthly_savings: saving,
  currency: 'USD',
});

describe('SavingsFinder', () => {
  it('loads recommendations on demand, largest saving first, total on top', async () => {
    stubFetch({
      '/api/costs/optimization': ok([rec('unused_ip', 'ip-1', '3.65'), rec('idle_compute', 'vm-1', '120.45')], {
        total: 2,
        monthly_savings: { USD: '124.10' },
      }),
    });
    renderWithProviders(<SavingsFinder />);
    expect(screen.queryByTestId('recommendations')).not.toBeInTheDocument();
    await userEvent.click(screen.getByRole('button', { name: 'Find savings' }));
    const list = await screen.findByTestId('recommendations');
    expect(within(list).getByTestId('savings-total')).toHaveTextContent('Potential savings: $124.10/month from 2 recommendations');
    const byRule = within(list).getByRole('list', { name: 'Savings by rule' });
    expect(within(byRule).getAllByRole('listitem').map((li) => li.textContent)).toEqual([
      'Idle compute: 1 · $120.45/month',
      'Unused IP address: 1 · $3.65/month',
    ]);
    const rows = within(list).getAllByRole('row').slice(1);
    expect(rows[0]).toHaveTextContent('Idle compute');
    expect(rows[0]).toHaveTextContent('vm-1');
    expect(rows[0]).toHaveTextContent('window days: 14');
    expect(rows[0]).toHaveTextContent('$120.45');
    expect(rows[1]).toHaveTextContent('Unused IP address');
  });

  it('shows an empty result and errors', async () => {
    stubFetch({ '/api/costs/optimization': ok([], { total: 0, monthly_savings: {} }) });
    renderWithProviders(<SavingsFinder />);
    await userEvent.click(screen.getByTestId('optimize-button'));
    expect(await screen.findByText('No recommendations')).toBeInTheDocument();

    stubFetch({ '/api/costs/optimization': problem(502, 'Bad Gateway', { request_id: 'req-o' }) });
    await userEvent.click(screen.getByRole('button', { name: 'Check again' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('Could not load recommendations: Bad Gateway');
  });

  it('adds up the saving per rule exactly, not as floats', async () => {
    stubFetch({
      '/api/costs/optimization': ok(
        [rec('idle_compute', 'vm-1', '1.001'), rec('idle_compute', 'vm-2', '0.134'), rec('unused_ip', 'ip-1', '0.50')],
        { total: 3, monthly_savings: { USD: '1.635' } },
      ),
    });
    renderWithProviders(<SavingsFinder />);
    await userEvent.click(screen.getByRole('button', { name: 'Find savings' }));
    const byRule = await screen.findByRole('list', { name: 'Savings by rule' });
    // 1.001 + 0.134 is 1.1349999999999998 in floats, which shows as $1.13.
    expect(within(byRule).getAllByRole('listitem').map((li) => li.textContent)).toEqual([
      'Idle compute: 2 · $1.14/month',
      'Unused IP address: 1 · $0.50/month',
    ]);
  });

  it('lists spend the inventory does not know, without a link, beside linked inventory resources', async () => {
    const unmanaged = {
      rule: 'unmanaged_spend',
      resource_id: null,
      external_id: 'arn:aws:s3:::old-logs',
      name: 'old-logs',
      evidence: { billed_in_window: '40.00', service: null, note: 'billed but not in the inventory' },
      monthly_savings: '40.00',
      currency: 'USD',
    };
    stubFetch({
      '/api/costs/optimization': ok([unmanaged, rec('idle_compute', 'vm-1', '120.45')], { total: 2, monthly_savings: { USD: '160.45' } }),
    });
    renderWithProviders(<SavingsFinder />);
    await userEvent.click(screen.getByRole('button', { name: 'Find savings' }));
    const table = await screen.findByRole('table', { name: 'Recommendations' });
    const [inventoryRow, billingRow] = within(table).getAllByRole('row').slice(1) as [HTMLElement, HTMLElement];
    expect(within(inventoryRow).getByRole('link', { name: 'vm-1' })).toHaveAttribute('href', '/resources?selected=vm-1-id');
    expect(billingRow).toHaveTextContent('Unmanaged spend');
    expect(billingRow).toHaveTextContent('old-logs');
    expect(billingRow).toHaveTextContent('arn:aws:s3:::old-logs · not in the inventory');
    expect(billingRow).toHaveTextContent('note: billed but not in the inventory');
    expect(billingRow).not.toHaveTextContent('null');
    expect(within(billingRow).queryByRole('link')).not.toBeInTheDocument();
    expect(billingRow).toHaveTextContent('$40.00');
  });
});

import { screen } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { ok, problem, stubFetch } from '@/test/fetch';
import { renderWithProviders } from '@/test/render';
import { InvoiceTable } from './InvoiceTable';

describe('InvoiceTable', () => {
  it('shows an empty state while the server has no invoices endpoint', async () => {
    stubFetch({ '/api/costs/invoices': problem(404, 'Not Found') });
    renderWithProviders(<InvoiceTable />);
    expect(await screen.findByText('No invoices yet')).toBeInTheDocument();
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();
  });

  it('lists invoices', async () => {
    stubFetch({
      '/api/costs/invoices': ok([
        {
          invoice_id: 'INV-1',
          billing_account_id: 'acc-1',
          billing_account_name: 'Main account',
          billing_period_start: '2026-10-01T00:00:00Z',
          billing_period_end: '2026-11-01T00:00:00Z',
          currency: 'USD',
          billed_total: '1234.5',
        },
      ]),
    });
    renderWithProviders(<InvoiceTable />);
    const row = (await screen.findByRole('cell', { name: 'INV-1' })).closest('tr');
    expect(row).toHaveTextContent('Main account');
    expect(row).toHaveTextContent('2026-10-01 – 2026-11-01');
    expect(row).toHaveTextContent('$1,234.50');
  });

  it('shows other failures', async () => {
    stubFetch({ '/api/costs/invoices': problem(500, 'Internal Server Error', { request_id: 'req-x' }) });
    renderWithProviders(<InvoiceTable />);
    expect(await screen.findByRole('alert')).toHaveTextContent('req-x');
  });
});

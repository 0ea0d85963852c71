import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { ok, problem, stubFetch } from '@/test/fetch';
import { renderWithProviders } from '@/test/render';
import { CostBreakdownExplorer } from './CostBreakdownExplorer';

describe('CostBreakdownExplorer', () => {
  it("adds up a group's days exactly, not as floats", async () => {
    stubFetch({
      '/api/costs/daily': ok(
        [
          { date: '2026-11-01', group: 'aws', currency: 'USD', cost: '1.001', line_items: 1 },
          { date: '2026-11-02', group: 'aws', currency: 'USD', cost: '0.134', line_items: 1 },
        ],
        { totals: { USD: '1.135' } },
      ),
    });
    renderWithProviders(<CostBreakdownExplorer />, { route: '/costs?start=2026-11-01&end=2026-11-30' });
    const table = await screen.findByRole('table', { name: 'Cost breakdown' });
    const [row] = within(table).getAllByRole('row').slice(1);
    // 1.001 + 0.134 is 1.1349999999999998 in floats, which shows as $1.13.
    expect(within(row as HTMLElement).getByRole('cell', { name: '$1.14' })).toBeInTheDocument();
    expect(screen.getByTestId('breakdown-total-USD')).toHaveTextContent('$1.14');
  });

  it('groups, changes basis and keeps the export links on the same query', async () => {
    const seen = stubFetch({
      '/api/costs/daily': (url) =>
        ok(
          [
            { date: '2026-11-01', group: 'aws', currency: 'USD', cost: '10.00', line_items: 2 },
            { date: '2026-11-02', group: 'aws', currency: 'USD', cost: '5.00', line_items: 1 },
            { date: '2026-11-01', group: 'gcp', currency: 'USD', cost: '20.00', line_items: 4 },
          ],
          { totals: { USD: '35.00' }, group_by: url.searchParams.get('group_by') },
        ),
    });
    renderWithProviders(<CostBreakdownExplorer />, { route: '/costs?start=2026-11-01&end=2026-11-30' });
    const table = await screen.findByRole('table', { name: 'Cost breakdown' });
    const rows = table.querySelectorAll('tbody tr');
    expect(rows[0]).toHaveTextContent('gcp$20.004');
    expect(rows[1]).toHaveTextContent('aws$15.003');
    expect(screen.getByTestId('breakdown-total-USD')).toHaveTextContent('$35.00');

    await userEvent.selectOptions(screen.getByLabelText('Group by'), 'provider');
    await userEvent.selectOptions(screen.getByLabelText('Cost basis'), 'effective');
    await waitFor(() => {
      const last = seen[seen.length - 1];
      expect(last?.url.searchParams.get('group_by')).toBe('provider');
      expect(last?.url.searchParams.get('basis')).toBe('effective');
    });
    const focus = screen.getByRole('link', { name: 'FOCUS CSV' });
    expect(focus.getAttribute('href')).toMatch(/^\/api\/costs\/export\/focus\.csv\?/);
    expect(focus.getAttribute('href')).toContain('basis=effective');
    expect(focus.getAttribute('href')).toContain('start=2026-11-01');
    expect(screen.getByRole('link', { name: 'Daily CSV' }).getAttribute('href')).toContain('group_by=provider');
  });

  it('shows validation errors from the API', async () => {
    stubFetch({
      '/api/costs/daily': problem(422, 'Invalid query', {
        request_id: 'req-5',
        errors: [{ field: 'start', message: 'start must not be after end' }],
      }),
    });
    renderWithProviders(<CostBreakdownExplorer />, { route: '/costs?start=2026-12-01&end=2026-11-01' });
    expect(await screen.findByRole('listitem')).toHaveTextContent('start: start must not be after end');
    expect(screen.getByText('req-5')).toBeInTheDocument();
    expect(screen.getByText('The start date must not be after the end date.')).toBeInTheDocument();
  });
});

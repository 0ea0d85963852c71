import { fireEvent, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ok, problem, stubFetch } from '@/test/fetch';
import { renderWithProviders } from '@/test/render';
import type { Resource } from '../types';
import { ResourceExplorer } from './ResourceExplorer';

function resource(index: number, overrides: Partial<Resource> = {}): Resource {
  return {
    id: `00000000-0000-0000-0000-${String(index).padStart(12, '0')}`,
    external_id: `ext-${index}`,
    name: `vm-${String(index).padStart(5, '0')}`,
    provider: 'aws',
    type: 'compute',
    region: 'us-east-1',
    account: '123',
    status: index % 2 ? 'running' : 'error',
    hourly_cost: '0.1250000000',
    currency: 'USD',
    tags: { env: 'prod' },
    owner: null,
    team: 'web',
    cpu_utilization: '12.50',
    memory_utilization: null,
    created_at: '2026-11-01T00:00:00Z',
    updated_at: '2026-11-02T00:00:00Z',
    ...overrides,
  };
}

/** The API over a fleet of `total` resources, honouring limit and offset. */
function fleetApi(total: number) {
  return (url: URL) => {
    const one = /^\/api\/resources\/0+-0+-0+-0+-(\d+)$/.exec(url.pathname);
    if (one) return ok(resource(Number(one[1])));
    const limit = Number(url.searchParams.get('limit'));
    const offset = Number(url.searchParams.get('offset'));
    const items = Array.from({ length: Math.max(0, Math.min(limit, total - offset)) }, (_, i) => resource(offset + i));
    return ok(items, { total, limit, offset });
  };
}

// jsdom lays nothing out: give elements a real size so the virtualiser renders rows.
let restore: (() => void) | undefined;
beforeAll(() => {
  const height = vi.spyOn(HTMLElement.prototype, 'clientHeight', 'get').mockReturnValue(440);
  const width = vi.spyOn(HTMLElement.prototype, 'clientWidth', 'get').mockReturnValue(1000);
  restore = () => {
    height.mockRestore();
    width.mockRestore();
  };
});
afterAll(() => restore?.());

describe('ResourceExplorer', () => {
  it('renders only the visible rows of a 10,000-row fleet, with status and cost', async () => {
    const seen = stubFetch({ '/api/resources': fleetApi(10_000) });
    renderWithProviders(<ResourceExplorer />, { route: '/resources' });
    const list = await screen.findByTestId('resources-list');
    expect(within(list).getByText('10,000 resources')).toBeInTheDocument();
    const rows = within(list).getAllByRole('row');
    expect(rows.length).toBeGreaterThan(5);
    expect(rows.length).toBeLessThan(40);
    expect(within(list).getByRole('button', { name: 'vm-00000' })).toBeInTheDocument();
    const firstRow = within(list).getByRole('button', { name: 'vm-00001' }).closest('[role="row"]') as HTMLElement;
    expect(within(firstRow).getByText('running')).toHaveClass('badge--ok');
    expect(within(firstRow).getByText('$0.125')).toBeInTheDocument();
    expect(seen[0]?.url.searchParams.get('limit')).toBe('100');
    expect(seen[0]?.url.searchParams.get('offset')).toBe('0');
  });

  it('moves between rows with the arrow keys', async () => {
    stubFetch({ '/api/resources': fleetApi(50) });
    renderWithProviders(<ResourceExplorer />, { route: '/resources' });
    const first = await screen.findByRole('button', { name: 'vm-00000' });
    first.focus();
    await userEvent.keyboard('{ArrowDown}');
    await waitFor(() => expect(screen.getByRole('button', { name: 'vm-00001' })).toHaveFocus());
    await userEvent.keyboard('{ArrowUp}');
    await waitFor(() => expect(screen.getByRole('button', { name: 'vm-00000' })).toHaveFocus());
    await userEvent.keyboard('{Enter}');
    const panel = await screen.findByRole('complementary');
    expect(await within(panel).findByRole('heading', { name: 'vm-00000' })).toBeInTheDocument();
  });

  it('loads the next page of 100 as the list scrolls to its end', async () => {
    const seen = stubFetch({ '/api/resources': fleetApi(250) });
    renderWithProviders(<ResourceExplorer />, { route: '/resources' });
    const list = await screen.findByTestId('resources-list');
    const scroller = list.querySelector('.vtable__scroll') as HTMLElement;
    scroller.scrollTop = 100 * 44;
    fireEvent.scroll(scroller);
    await waitFor(() => expect(seen.map((r) => r.url.searchParams.get('offset'))).toContain('100'));
    expect(await within(list).findByRole('button', { name: 'vm-00100' })).toBeInTheDocument();
  });

  it('sends the filters to the server and keeps them in the URL', async () => {
    const seen = stubFetch({ '/api/resources': fleetApi(3) });
    renderWithProviders(<ResourceExplorer />, { route: '/resources?provider=gcp' });
    await screen.findByText('3 resources');
    expect(seen[0]?.url.searchParams.get('provider')).toBe('gcp');
    expect(screen.getByLabelText('Provider')).toHaveValue('gcp');

    await userEvent.selectOptions(screen.getByLabelText('Status'), 'error');
    await userEvent.type(screen.getByLabelText('Tag'), 'env:prod');
    await userEvent.type(screen.getByLabelText('Search'), 'vm{Enter}');
    await waitFor(() => {
      const last = seen[seen.length - 1]?.url.searchParams;
      expect(last?.get('status')).toBe('error');
      expect(last?.get('tag')).toBe('env:prod');
      expect(last?.get('q')).toBe('vm');
      expect(last?.get('provider')).toBe('gcp');
    });

    await userEvent.selectOptions(screen.getByLabelText('Sort by'), '-hourly_cost');
    await waitFor(() => expect(seen[seen.length - 1]?.url.searchParams.get('sort')).toBe('-hourly_cost'));
    expect(seen[0]?.url.searchParams.get('sort')).toBe('name');

    await userEvent.click(screen.getByRole('button', { name: 'Clear filters' }));
    await waitFor(() => expect(seen[seen.length - 1]?.url.searchParams.get('status')).toBeNull());
    expect(screen.getByLabelText('Status')).toHaveValue('');
  });

  it('shows an empty state and API errors', async () => {
    stubFetch({ '/api/resources': ok([], { total: 0, limit: 100, offset: 0 }) });
    const { unmount } = renderWithProviders(<ResourceExplorer />);
    expect(await screen.findByText('No resources match these filters')).toBeInTheDocument();
    unmount();

    stubFetch({
      '/api/resources': problem(400, 'Bad Request', { request_id: 'req-r', errors: [{ field: 'status', message: 'unknown status' }] }),
    });
    renderWithProviders(<ResourceExplorer />, { route: '/resources?status=bogus' });
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('Could not load resources: Bad Request');
    expect(alert).toHaveTextContent('status: unknown status');
    expect(alert).toHaveTextContent('req-r');
  });

  it('opens a resource: details, empty utilisation on 404, its cost and its alerts', async () => {
    const one = resource(1, { name: 'db-main', external_id: 'ext-db' });
    const seen = stubFetch({
      '/api/resources': (url) => (url.pathname === '/api/resources' ? ok([one], { total: 1 }) : ok(one)),
      [`/api/resources/${one.id}/utilization`]: problem(404, 'Not Found'),
      '/api/costs/daily': ok(
        [
          { date: '2026-11-01', group: null, currency: 'USD', cost: '2.50', line_items: 1 },
          { date: '2026-11-02', group: null, currency: 'USD', cost: '3.00', line_items: 1 },
        ],
        { group_by: 'none', totals: { USD: '5.50' } },
      ),
      '/api/alerts': ok([
        {
          id: 'a1',
          severity: 'critical',
          status: 'firing',
          labels: { alertname: 'ResourceInError' },
          annotations: { title: 'db-main is in error' },
          starts_at: '2026-11-02T10:00:00Z',
        },
      ]),
    });
    renderWithProviders(<ResourceExplorer />, { route: '/resources' });
    await userEvent.click(await screen.findByRole('button', { name: 'db-main' }));
    const panel = await screen.findByRole('complementary');
    expect(await within(panel).findByRole('heading', { name: 'db-main' })).toHaveFocus();
    expect(within(panel).getByText('ext-db')).toBeInTheDocument();
    expect(await within(panel).findByText('No utilisation samples yet')).toBeInTheDocument();
    expect(await within(panel).findByText('$5.50')).toBeInTheDocument();
    expect(await within(panel).findByText('db-main is in error')).toBeInTheDocument();
    const costQueries = seen.filter((r) => r.url.pathname === '/api/costs/daily');
    expect(costQueries).toHaveLength(1);
    expect(costQueries[0]?.url.searchParams.get('resource')).toBe('ext-db');
    expect(costQueries[0]?.url.searchParams.get('group_by')).toBe('none');
    const alertQuery = seen.find((r) => r.url.pathname === '/api/alerts');
    expect(alertQuery?.url.searchParams.get('matcher')).toBe(`resource_id=${one.id}`);

    await userEvent.click(within(panel).getByRole('button', { name: 'Close details' }));
    expect(screen.queryByRole('complementary')).not.toBeInTheDocument();
  });
});

import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { useSessionStore } from '@/stores/session';
import { ok, problem, stubFetch } from '@/test/fetch';
import { renderWithProviders } from '@/test/render';
import { SessionGate } from './App';

const quietApi = {
  '/api/costs': ok([]),
  '/api/costs/realtime': ok({ hourly_cost: {}, month_to_date: {}, projected_month_end: {}, month: '2026-11', at: '', hours_left_in_month: '1' }),
  '/api/costs/forecast': ok({ basis: 'billed', horizon_days: 30, model: '', currencies: {}, message: null }),
  '/api/alerts': ok([], { total: 0 }),
};

describe('SessionGate', () => {
  it('shows the login page, not an error, when there is no session', async () => {
    stubFetch({ '/api/auth/session': problem(401, 'Unauthorized', { request_id: 'r1' }) });
    renderWithProviders(<SessionGate />);
    expect(await screen.findByRole('heading', { name: 'Sign in to CloudOps' })).toBeInTheDocument();
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();
  });

  it('signs in and shows navigation; Admin only for admins', async () => {
    const seen = stubFetch({
      ...quietApi,
      '/api/auth/session': problem(401, 'Unauthorized'),
      'POST /api/auth/login': ok({ username: 'ana', permissions: ['read'], csrf_token: 'tok' }),
    });
    renderWithProviders(<SessionGate />);
    await userEvent.type(await screen.findByLabelText('Username'), 'ana');
    await userEvent.type(screen.getByLabelText('Password'), 'secret');
    await userEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    const nav = await screen.findByRole('navigation', { name: 'Main' });
    for (const name of ['Overview', 'Resources', 'Costs', 'Savings', 'Alerts', 'Imports']) {
      expect(within(nav).getByRole('link', { name })).toBeInTheDocument();
    }
    expect(within(nav).queryByRole('link', { name: 'Admin' })).not.toBeInTheDocument();
    expect(useSessionStore.getState().csrfToken).toBe('tok');
    const login = seen.find((request) => request.url.pathname === '/api/auth/login');
    expect(login?.body).toEqual({ username: 'ana', password: 'secret' });
  });

  it('shows the Admin link to an admin with a live session', async () => {
    stubFetch({ ...quietApi, '/api/auth/session': ok({ username: 'root', permissions: ['admin', 'read'], csrf_token: 't' }) });
    renderWithProviders(<SessionGate />);
    const nav = await screen.findByRole('navigation', { name: 'Main' });
    expect(within(nav).getByRole('link', { name: 'Admin' })).toBeInTheDocument();
    expect(screen.getByText('Signed in as root')).toBeInTheDocument();
  });

  it('logs out with the CSRF token and returns to the login page', async () => {
    const seen = stubFetch({
      ...quietApi,
      '/api/auth/session': ok({ username: 'root', permissions: ['read'], csrf_token: 'csrf-1' }),
      'POST /api/auth/logout': { status: 204 },
    });
    renderWithProviders(<SessionGate />);
    await userEvent.click(await screen.findByRole('button', { name: 'Log out' }));
    expect(await screen.findByRole('heading', { name: 'Sign in to CloudOps' })).toBeInTheDocument();
    expect(screen.getByText('You have signed out.')).toBeInTheDocument();
    const logout = seen.find((request) => request.url.pathname === '/api/auth/logout');
    expect(logout?.headers.get('X-CSRF-Token')).toBe('csrf-1');
  });

  it('shows the login page when a request of a live session gets 401 (a stale tab)', async () => {
    stubFetch({
      ...quietApi,
      '/api/auth/session': ok({ username: 'root', permissions: ['read'], csrf_token: 't' }),
      '/api/costs/realtime': problem(401, 'Unauthorized'),
    });
    const { client } = renderWithProviders(<SessionGate />);
    expect(await screen.findByRole('heading', { name: 'Sign in to CloudOps' })).toBeInTheDocument();
    expect(screen.getByText(/session has ended/i)).toBeInTheDocument();
    expect(client.getQueryCache().getAll()).toHaveLength(0);
  });
});

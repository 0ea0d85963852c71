import { useQuery } from '@tanstack/react-query';
import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Route, Routes } from 'react-router';
import { apiFetch } from '@/lib/api';
import { useSessionStore } from '@/stores/session';
import { ok, stubFetch } from '@/test/fetch';
import { renderWithProviders } from '@/test/render';
import { AppLayout } from './AppLayout';

interface Team {
  name: string;
}

/** A view that trusts its answer to be an object, as views do. */
function TeamView() {
  const team = useQuery({ queryKey: ['team'], queryFn: async () => (await apiFetch<Team>('/api/team')).data });
  return team.data ? <h1>Team {team.data.name.toUpperCase()}</h1> : null;
}

function renderLayout() {
  return renderWithProviders(
    <Routes>
      <Route element={<AppLayout />}>
        <Route index element={<TeamView />} />
        <Route path="costs" element={<h1>Costs view</h1>} />
      </Route>
    </Routes>,
  );
}

describe('AppLayout', () => {
  beforeEach(() => {
    useSessionStore.setState({ user: { username: 'ana', permissions: ['read'] }, csrfToken: 't', status: 'authenticated' });
    // React reports every caught render error on the console; the test looks at the page instead.
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
  });
  afterEach(() => vi.restoreAllMocks());

  it('shows a view that fails on unexpected data as a message, with the navigation still usable', async () => {
    stubFetch({ '/api/team': ok([]) });
    renderLayout();
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('This view could not be shown');
    expect(within(alert).getByRole('button', { name: 'Try again' })).toBeInTheDocument();
    await userEvent.click(within(screen.getByRole('navigation', { name: 'Main' })).getByRole('link', { name: 'Costs' }));
    expect(await screen.findByRole('heading', { name: 'Costs view' })).toBeInTheDocument();
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();
  });

  it('asks the API again on "Try again" and shows the view once the answer is right', async () => {
    let calls = 0;
    stubFetch({ '/api/team': () => (calls++ === 0 ? ok([]) : ok({ name: 'platform' })) });
    renderLayout();
    await userEvent.click(await screen.findByRole('button', { name: 'Try again' }));
    expect(await screen.findByRole('heading', { name: 'Team PLATFORM' })).toBeInTheDocument();
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();
    expect(calls).toBe(2);
  });
});

import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { useSessionStore } from '@/stores/session';
import { ok, problem } from '@/test/fetch';
import { renderWithProviders } from '@/test/render';

import { historyEntry, makeAlert, stubAlertsApi } from '../testing/fixtures';
import type { Alert } from '../types';
import { AlertsPage } from './AlertsPage';

beforeEach(() => {
  useSessionStore.setState({
    user: { username: 'ops', permissions: ['read', 'write'] },
    csrfToken: 'csrf-1',
    status: 'authenticated',
  });
});

afterEach(() => {
  vi.unstubAllGlobals();
});

// Typing through a whole form is slow on a busy machine; the default 5 s is not enough there.
vi.setConfig({ testTimeout: 20_000 });

function renderPage(route = '/alerts') {
  renderWithProviders(<AlertsPage />, { route });
}

function alertsTable() {
  return screen.getByRole('table', { name: /alerts, newest first/i });
}

describe('AlertsPage', () => {
  it('shows the alerts with their severity as text and says it is live', async () => {
    stubAlertsApi({
      '/api/alerts': ok(
        [
          makeAlert({ severity: 'critical', annotations: { title: 'Database down' } }),
          makeAlert({ severity: 'info', labels: { alertname: 'DiskSlow', severity: 'info' } }),
        ],
        { total: 2 },
      ),
    });
    renderPage();

    const row = (await screen.findByRole('rowheader', { name: 'Database down' })).closest('tr');
    expect(within(row as HTMLElement).getByText('critical')).toBeInTheDocument();
    expect(screen.getByRole('rowheader', { name: 'DiskSlow' })).toBeInTheDocument();
    expect(await screen.findByText(/live: new alerts appear/i)).toBeInTheDocument();
  });

  it('adds an alert from the live feed without a reload, and resumes after a dropped connection', async () => {
    const feed = stubAlertsApi({ '/api/alerts': ok([], { total: 0 }) });
    renderPage();
    expect(await screen.findByText('No alerts match these filters')).toBeInTheDocument();
    await screen.findByText(/live: new alerts appear/i);

    feed.send('alert.raised', makeAlert({ annotations: { title: 'CPU hot' } }), '10-0');
    expect(await screen.findByRole('rowheader', { name: 'CPU hot' })).toBeInTheDocument();

    feed.drop();
    expect(await screen.findByText(/reconnecting to live updates in/i)).toBeInTheDocument();
    await waitFor(() => expect(feed.resumeIds).toEqual([null, '10-0']));
    await screen.findByText(/live: new alerts appear/i);
    feed.send('alert.raised', makeAlert({ annotations: { title: 'Disk full' } }), '11-0');
    expect(await screen.findByRole('rowheader', { name: 'Disk full' })).toBeInTheDocument();
    expect(screen.getByRole('rowheader', { name: 'CPU hot' })).toBeInTheDocument();
  });

  it('reads the list again when a fresh stream opens, but not when it resumes', async () => {
    const feed = stubAlertsApi({ '/api/alerts': ok([], { total: 0 }) });
    const lists = () => feed.requests.filter((r) => r.url.pathname === '/api/alerts').length;
    renderPage();
    await screen.findByText(/live: new alerts appear/i);
    await waitFor(() => expect(lists()).toBe(2));

    feed.send('alert.raised', makeAlert(), '1-0');
    feed.drop();
    await waitFor(() => expect(feed.resumeIds).toEqual([null, '1-0']));
    await screen.findByText(/live: new alerts appear/i);
    expect(lists()).toBe(2);
  });

  it('asks the API again when a filter is ticked', async () => {
    const feed = stubAlertsApi({ '/api/alerts': ok([], { total: 0 }) });
    const user = userEvent.setup({ delay: null });
    renderPage();
    await screen.findByText('No alerts match these filters');

    await user.click(screen.getByRole('checkbox', { name: 'critical' }));
    await user.click(screen.getByRole('checkbox', { name: 'firing' }));
    await user.type(screen.getByRole('textbox', { name: 'Source' }), 'alertmanager');
    await user.click(screen.getByRole('button', { name: 'Apply source' }));

    await waitFor(() => {
      const last = feed.requests.filter((r) => r.url.pathname === '/api/alerts').at(-1);
      expect(last?.url.searchParams.get('severity')).toBe('critical');
      expect(last?.url.searchParams.get('status')).toBe('firing');
      expect(last?.url.searchParams.get('source')).toBe('alertmanager');
    });
  });

  it('shows a failed load readably, with the request id', async () => {
    stubAlertsApi({
      '/api/alerts': problem(503, 'Service Unavailable', {
        detail: 'The alerts service is not answering.',
        request_id: 'req-7f3a',
      }),
    });
    renderPage();

    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('Could not load alerts: Service Unavailable');
    expect(alert).toHaveTextContent('The alerts service is not answering.');
    expect(alert).toHaveTextContent('req-7f3a');
  });
});

describe('AlertsPage details', () => {
  const firing = makeAlert({
    id: '11111111-1111-4111-8111-111111111111',
    severity: 'critical',
    labels: { alertname: 'HostDown', severity: 'critical', team: 'payments' },
    annotations: { title: 'Host down' },
  });

  function stubDetails(alert: Alert, extra: Parameters<typeof stubAlertsApi>[0] = {}) {
    const history = [
      historyEntry(),
      historyEntry({ actor: 'ana', action: 'commented', to_status: null, comment: 'Looking' }),
    ];
    return stubAlertsApi({
      '/api/alerts': ok([alert], { total: 1 }),
      [`GET /api/alerts/${alert.id}`]: ok({ ...alert, history }),
      ...extra,
    });
  }

  async function openDetails() {
    const user = userEvent.setup({ delay: null });
    renderPage();
    await user.click(await screen.findByRole('button', { name: 'Details of Host down' }));
    const panel = await screen.findByRole('region', { name: 'Alert details' });
    await within(panel).findByRole('heading', { name: 'Host down' });
    return { user, panel };
  }

  it('shows labels, comments and history, and moves focus to the alert', async () => {
    stubDetails(firing);
    const { panel } = await openDetails();

    expect(within(panel).getByRole('heading', { name: 'Host down' })).toHaveFocus();
    expect(within(panel).getByText('payments')).toBeInTheDocument();
    const comments = within(panel).getByRole('region', { name: 'Comments' });
    expect(within(comments).getByText('Looking')).toBeInTheDocument();
    const history = within(panel).getByRole('region', { name: 'History' });
    expect(within(history).getAllByRole('listitem')).toHaveLength(2);
    expect(within(history).getByText(/ana commented/)).toBeInTheDocument();
  });

  it('acknowledges with a note and the CSRF token, then shows the new status', async () => {
    const acknowledged = { ...firing, status: 'acknowledged' as const, acknowledged_by: 'ops' };
    const feed = stubDetails(firing, { [`POST /api/alerts/${firing.id}/ack`]: ok(acknowledged) });
    const { user, panel } = await openDetails();

    await user.type(within(panel).getByRole('textbox', { name: 'Note (optional)' }), 'on it');
    await user.click(within(panel).getByRole('button', { name: 'Acknowledge' }));

    await waitFor(() =>
      expect(within(alertsTable()).getByText('acknowledged')).toBeInTheDocument(),
    );
    const post = feed.requests.find((r) => r.method === 'POST');
    expect(post?.body).toEqual({ comment: 'on it' });
    expect(post?.headers.get('X-CSRF-Token')).toBe('csrf-1');
  });

  it('says why an action failed, with the request id', async () => {
    stubDetails(firing, {
      [`POST /api/alerts/${firing.id}/resolve`]: problem(409, 'Conflict', {
        detail: 'The alert is already resolved.',
        request_id: 'req-9',
      }),
    });
    const { user, panel } = await openDetails();

    await user.click(within(panel).getByRole('button', { name: 'Resolve' }));

    const error = await within(panel).findByRole('alert');
    expect(error).toHaveTextContent('The alert was not changed: Conflict');
    expect(error).toHaveTextContent('req-9');
  });

  it('adds a comment', async () => {
    const feed = stubDetails(firing, { [`POST /api/alerts/${firing.id}/comments`]: ok(firing) });
    const { user, panel } = await openDetails();

    await user.type(within(panel).getByRole('textbox', { name: 'Add a comment' }), 'Rebooting now');
    await user.click(within(panel).getByRole('button', { name: 'Add comment' }));

    await waitFor(() =>
      expect(feed.requests.find((r) => r.method === 'POST')?.body).toEqual({ text: 'Rebooting now' }),
    );
    await waitFor(() =>
      expect(within(panel).getByRole('textbox', { name: 'Add a comment' })).toHaveValue(''),
    );
  });

  it('creates a silence from the alert labels for the chosen duration', async () => {
    const feed = stubDetails(firing, {
      'POST /api/alerts/silences': {
        status: 201,
        body: {
          success: true,
          data: { id: 's1', matchers: [], state: 'active', ends_at: '2026-11-30T11:00:00Z' },
        },
      },
    });
    const { user, panel } = await openDetails();
    await user.click(within(panel).getByRole('button', { name: /silence alerts like this/i }));

    const form = within(panel).getByRole('form', { name: /silence alerts like/i });
    expect(within(form).getByRole('textbox', { name: 'Value for team' })).toHaveValue('payments');
    await user.click(within(form).getByRole('checkbox', { name: 'Match severity' }));
    await user.selectOptions(within(form).getByRole('combobox', { name: 'Operator for alertname' }), '=~');
    await user.clear(within(form).getByRole('textbox', { name: 'Value for alertname' }));
    await user.type(within(form).getByRole('textbox', { name: 'Value for alertname' }), 'Host.*');
    await user.selectOptions(within(form).getByRole('combobox', { name: 'Duration' }), '4 hours');
    await user.type(within(form).getByRole('textbox', { name: 'Why (comment)' }), 'Maintenance');
    const before = Date.now();
    await user.click(within(form).getByRole('button', { name: 'Create silence' }));

    expect(await within(panel).findByText(/silence created/i)).toBeInTheDocument();
    const body = feed.requests.find((r) => r.url.pathname === '/api/alerts/silences')?.body as {
      matchers: unknown[];
      endsAt: string;
      comment: string;
    };
    expect(body.matchers).toEqual([
      { name: 'alertname', value: 'Host.*', isRegex: true, isEqual: true },
      { name: 'team', value: 'payments', isRegex: false, isEqual: true },
    ]);
    expect(body.comment).toBe('Maintenance');
    const hours = (Date.parse(body.endsAt) - before) / 3_600_000;
    expect(hours).toBeGreaterThan(3.99);
    expect(hours).toBeLessThan(4.01);
  });

  it('opens the alert named in the address, and Escape closes it back to its row', async () => {
    stubDetails(firing);
    const user = userEvent.setup({ delay: null });
    renderPage(`/alerts?alert=${firing.id}`);

    const panel = await screen.findByRole('region', { name: 'Alert details' });
    await within(panel).findByRole('heading', { name: 'Host down' });
    await user.keyboard('{Escape}');

    expect(screen.queryByRole('region', { name: 'Alert details' })).not.toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Details of Host down' })).toHaveFocus();
  });

  it('shows a read-only account the alert without the actions it may not use', async () => {
    useSessionStore.setState({ user: { username: 'viewer', permissions: ['read'] } });
    stubDetails(firing);
    const { panel } = await openDetails();

    expect(within(panel).getByRole('note')).toHaveTextContent(/need the write permission/i);
    expect(within(panel).queryByRole('button', { name: 'Acknowledge' })).not.toBeInTheDocument();
    expect(within(panel).queryByRole('textbox', { name: 'Add a comment' })).not.toBeInTheDocument();
    const comments = within(panel).getByRole('region', { name: 'Comments' });
    expect(within(comments).getByText('Looking')).toBeInTheDocument();
  });

  it('reloads the open alert when the live feed reports a change to it', async () => {
    const feed = stubDetails(firing);
    const { panel } = await openDetails();
    const loads = () =>
      feed.requests.filter((r) => r.url.pathname === `/api/alerts/${firing.id}`).length;
    expect(loads()).toBe(1);

    feed.send('alert.commented', firing, '12-0');

    await waitFor(() => expect(loads()).toBe(2));
    expect(within(panel).getByRole('heading', { name: 'Host down' })).toBeInTheDocument();
  });
});

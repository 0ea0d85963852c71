import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';

import { useSessionStore } from '@/stores/session';
import { ok, problem, stubFetch, type StubHandler, type StubResponse } from '@/test/fetch';
import { renderWithProviders } from '@/test/render';

import type { ApiKey, User } from '../types';
import { AdminPage } from './AdminPage';

afterEach(() => {
  vi.unstubAllGlobals();
});

// Typing through a whole form is slow on a busy machine; the default 5 s is not enough there.
vi.setConfig({ testTimeout: 20_000 });

function signIn(permissions: string[]) {
  useSessionStore.setState({
    user: { username: 'root', permissions },
    csrfToken: 'csrf-admin',
    status: 'authenticated',
  });
}

function apiKey(overrides: Partial<ApiKey> = {}): ApiKey {
  return {
    id: 'key_0123456789abcdef',
    name: 'ci pipeline',
    owner: 'platform',
    permissions: ['read', 'write'],
    rate_limit: null,
    rate_window_seconds: null,
    created_at: '2026-11-01T10:00:00+00:00',
    expires_at: null,
    revoked_at: null,
    ...overrides,
  };
}

const ADMIN_USER: User = {
  username: 'admin',
  permissions: ['admin', 'read', 'write'],
  created_at: '2026-11-01T09:00:00+00:00',
  disabled: false,
};

function stubAdminApi(routes: Record<string, StubHandler | StubResponse> = {}) {
  return stubFetch({
    'GET /api/admin/keys': ok([apiKey()], { total: 1, limit: 50, offset: 0 }),
    'GET /api/admin/users': ok([ADMIN_USER]),
    ...routes,
  });
}

describe('AdminPage', () => {
  it('explains that the admin permission is needed, and asks the API nothing', () => {
    signIn(['read', 'write']);
    const requests = stubAdminApi();
    renderWithProviders(<AdminPage />);

    expect(screen.getByRole('alert')).toHaveTextContent(/needs the admin permission/i);
    expect(screen.queryByRole('heading', { name: 'API keys' })).not.toBeInTheDocument();
    expect(requests).toHaveLength(0);
  });

  it('lists API keys and users', async () => {
    signIn(['admin', 'read']);
    stubAdminApi({
      'GET /api/admin/keys': ok(
        [apiKey(), apiKey({ id: 'key_2', name: 'old bot', revoked_at: '2026-11-02T00:00:00+00:00' })],
        { total: 2 },
      ),
    });
    renderWithProviders(<AdminPage />);

    const keys = await screen.findByRole('table', { name: 'API keys' });
    const active = within(keys).getByRole('row', { name: /ci pipeline/ });
    expect(within(active).getByText('active')).toBeInTheDocument();
    expect(within(active).getByRole('button', { name: 'Revoke ci pipeline' })).toBeInTheDocument();
    const revoked = within(keys).getByRole('row', { name: /old bot/ });
    expect(within(revoked).getByText('revoked')).toBeInTheDocument();
    expect(within(revoked).queryByRole('button')).not.toBeInTheDocument();
    const users = await screen.findByRole('table', { name: 'Users' });
    expect(within(users).getByRole('rowheader', { name: 'admin' })).toBeInTheDocument();
  });

  it('shows an empty state when there are no keys', async () => {
    signIn(['admin']);
    stubAdminApi({ 'GET /api/admin/keys': ok([], { total: 0 }) });
    renderWithProviders(<AdminPage />);
    expect(await screen.findByText('No API keys yet')).toBeInTheDocument();
  });

  it('pages through many keys', async () => {
    signIn(['admin']);
    const requests = stubAdminApi({
      'GET /api/admin/keys': (url) =>
        ok([apiKey({ name: `key at ${url.searchParams.get('offset')}` })], { total: 120 }),
    });
    const user = userEvent.setup({ delay: null });
    renderWithProviders(<AdminPage />);
    const pages = await screen.findByRole('navigation', { name: 'API key pages' });
    expect(within(pages).getByRole('button', { name: 'Previous keys' })).toBeDisabled();
    expect(pages).toHaveTextContent('1–50 of 120');

    await user.click(within(pages).getByRole('button', { name: 'Next keys' }));

    expect(await screen.findByRole('rowheader', { name: 'key at 50' })).toBeInTheDocument();
    const keyPages = requests.filter((r) => r.url.pathname === '/api/admin/keys');
    expect(keyPages.map((r) => r.url.searchParams.get('offset'))).toEqual(['0', '50']);
    expect(screen.getByRole('navigation', { name: 'API key pages' })).toHaveTextContent('51–100 of 120');
  });

  it('shows a new key once, with a warning and a copy button', async () => {
    signIn(['admin']);
    const requests = stubAdminApi({
      'POST /api/admin/keys': {
        status: 201,
        body: { success: true, data: { ...apiKey({ name: 'backup job' }), key: 'ck_secret_value' } },
      },
    });
    const user = userEvent.setup({ delay: null });
    renderWithProviders(<AdminPage />);
    const form = await screen.findByRole('form', { name: 'Create an API key' });

    await user.type(within(form).getByRole('textbox', { name: 'Key name' }), 'backup job');
    await user.type(within(form).getByRole('textbox', { name: 'Owner' }), 'storage team');
    await user.click(within(form).getByRole('checkbox', { name: /^write/ }));
    await user.click(within(form).getByRole('button', { name: 'Create key' }));

    const notice = await screen.findByRole('region', { name: /backup job.* created/i });
    expect(notice).toHaveTextContent(/will not be shown again/i);
    expect(within(notice).getByRole('textbox', { name: 'API key' })).toHaveValue('ck_secret_value');
    await user.click(within(notice).getByRole('button', { name: 'Copy key' }));
    expect(await navigator.clipboard.readText()).toBe('ck_secret_value');
    expect(within(notice).getByRole('status')).toHaveTextContent('Copied');

    const post = requests.find((r) => r.method === 'POST');
    expect(post?.body).toEqual({
      name: 'backup job',
      owner: 'storage team',
      permissions: ['read', 'write'],
    });
    expect(post?.headers.get('X-CSRF-Token')).toBe('csrf-admin');
    expect(requests.filter((r) => r.url.pathname === '/api/admin/keys' && r.method === 'GET')).toHaveLength(2);

    await user.click(within(notice).getByRole('button', { name: 'I have stored the key' }));
    expect(screen.queryByText('ck_secret_value')).not.toBeInTheDocument();
    expect(screen.queryByRole('textbox', { name: 'API key' })).not.toBeInTheDocument();
  });

  it('shows why a key was refused, field by field, with the request id', async () => {
    signIn(['admin']);
    stubAdminApi({
      'POST /api/admin/keys': problem(400, 'Bad Request', {
        detail: 'The request body is invalid.',
        errors: [{ field: 'name', message: 'letters, digits, space and . _ @ - only' }],
        request_id: 'req-admin-1',
      }),
    });
    const user = userEvent.setup({ delay: null });
    renderWithProviders(<AdminPage />);
    const form = await screen.findByRole('form', { name: 'Create an API key' });

    await user.type(within(form).getByRole('textbox', { name: 'Key name' }), 'bad/name');
    await user.type(within(form).getByRole('textbox', { name: 'Owner' }), 'me');
    await user.click(within(form).getByRole('button', { name: 'Create key' }));

    const error = await within(form).findByRole('alert');
    expect(error).toHaveTextContent('The key was not created: Bad Request');
    expect(error).toHaveTextContent('letters, digits, space and . _ @ - only');
    expect(error).toHaveTextContent('req-admin-1');
  });

  it('revokes a key only after confirmation', async () => {
    signIn(['admin']);
    const requests = stubAdminApi({
      'DELETE /api/admin/keys': ok(apiKey({ revoked_at: '2026-11-30T07:00:00+00:00' })),
    });
    const user = userEvent.setup({ delay: null });
    renderWithProviders(<AdminPage />);

    await user.click(await screen.findByRole('button', { name: 'Revoke ci pipeline' }));
    const confirm = screen.getByRole('group', { name: 'Confirm revoking ci pipeline' });
    expect(within(confirm).getByRole('button', { name: 'Keep the key' })).toHaveFocus();
    await user.keyboard('{Enter}');
    expect(requests.some((r) => r.method === 'DELETE')).toBe(false);
    expect(screen.getByRole('button', { name: 'Revoke ci pipeline' })).toHaveFocus();

    await user.click(screen.getByRole('button', { name: 'Revoke ci pipeline' }));
    await user.click(screen.getByRole('button', { name: 'Yes, revoke ci pipeline' }));

    await waitFor(() => {
      const revoke = requests.find((r) => r.method === 'DELETE');
      expect(revoke?.url.pathname).toBe('/api/admin/keys/key_0123456789abcdef');
      expect(revoke?.headers.get('X-CSRF-Token')).toBe('csrf-admin');
    });
    const keyLists = () =>
      requests.filter((r) => r.method === 'GET' && r.url.pathname === '/api/admin/keys').length;
    await waitFor(() => expect(keyLists()).toBe(2));
  });

  it('creates a user with a password and permissions', async () => {
    signIn(['admin']);
    let users = [ADMIN_USER];
    const created: User = { ...ADMIN_USER, username: 'dana', permissions: ['read'] };
    const requests = stubAdminApi({
      'GET /api/admin/users': () => ok(users),
      'POST /api/admin/users': () => {
        users = [ADMIN_USER, created];
        return { status: 201, body: { success: true, data: created } };
      },
    });
    const user = userEvent.setup({ delay: null });
    renderWithProviders(<AdminPage />);
    const form = await screen.findByRole('form', { name: 'Create a user' });

    await user.type(within(form).getByRole('textbox', { name: 'Username' }), 'dana');
    await user.type(within(form).getByLabelText('Password'), 'correct horse battery');
    await user.click(within(form).getByRole('button', { name: 'Create user' }));

    expect(await within(form).findByRole('status')).toHaveTextContent('User dana created.');
    const table = screen.getByRole('table', { name: 'Users' });
    expect(await within(table).findByRole('rowheader', { name: 'dana' })).toBeInTheDocument();
    expect(requests.find((r) => r.method === 'POST')?.body).toEqual({
      username: 'dana',
      password: 'correct horse battery',
      permissions: ['read'],
    });
  });

  it('shows a failed list readably', async () => {
    signIn(['admin']);
    stubAdminApi({
      'GET /api/admin/users': problem(403, 'Forbidden', {
        detail: 'Your address may not reach /api/admin.',
        request_id: 'req-403',
      }),
    });
    renderWithProviders(<AdminPage />);

    const error = await screen.findByRole('alert');
    expect(error).toHaveTextContent('Could not load the users: Forbidden');
    expect(error).toHaveTextContent('req-403');
  });
});

import { screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { useSessionStore } from '@/stores/session';
import { problem, stubFetch } from '@/test/fetch';
import { renderWithProviders } from '@/test/render';
import { LoginForm } from './LoginForm';

describe('LoginForm', () => {
  it('says the credentials are wrong on 401 and keeps the user signed out', async () => {
    stubFetch({ 'POST /api/auth/login': problem(401, 'Unauthorized', { detail: 'Invalid credentials.', request_id: 'req-7' }) });
    useSessionStore.getState().clearSession(null);
    renderWithProviders(<LoginForm />);
    await userEvent.type(screen.getByLabelText('Username'), 'ana');
    await userEvent.type(screen.getByLabelText('Password'), 'nope');
    await userEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('Wrong username or password');
    expect(alert).toHaveTextContent('req-7');
    expect(useSessionStore.getState()).toMatchObject({ status: 'anonymous', notice: null });
  });

  it('shows a server failure with its request id', async () => {
    stubFetch({ 'POST /api/auth/login': problem(503, 'Service Unavailable', { detail: 'Try later.', request_id: 'req-8' }) });
    renderWithProviders(<LoginForm />);
    await userEvent.type(screen.getByLabelText('Username'), 'ana');
    await userEvent.type(screen.getByLabelText('Password'), 'pw');
    await userEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('Service Unavailable');
    expect(alert).toHaveTextContent('Request id: req-8');
  });
});

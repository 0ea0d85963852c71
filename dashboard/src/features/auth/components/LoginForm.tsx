import { useState, type FormEvent } from 'react';
import { ErrorMessage } from '@/components';
import { ApiError } from '@/lib/api';
import { useSessionStore } from '@/stores/session';
import { login } from '../api/session';

/** Username and password form; on success the session store holds the user and CSRF token. */
export function LoginForm() {
  const setSession = useSessionStore((state) => state.setSession);
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<unknown>(null);

  async function onSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setPending(true);
    setError(null);
    try {
      const data = await login(username.trim(), password);
      setSession({ username: data.username, permissions: data.permissions }, data.csrf_token);
    } catch (cause) {
      setError(
        cause instanceof ApiError && cause.status === 401
          ? new ApiError({ ...cause, title: 'Wrong username or password', detail: cause.detail })
          : cause,
      );
      setPending(false);
    }
  }

  return (
    <form className="login-form" onSubmit={(event) => void onSubmit(event)} aria-labelledby="login-heading">
      <h1 id="login-heading">Sign in to CloudOps</h1>
      {error !== null && <ErrorMessage error={error} />}
      <label htmlFor="login-username">Username</label>
      <input
        id="login-username"
        name="username"
        autoComplete="username"
        required
        value={username}
        onChange={(event) => setUsername(event.target.value)}
      />
      <label htmlFor="login-password">Password</label>
      <input
        id="login-password"
        name="password"
        type="password"
        autoComplete="current-password"
        required
        value={password}
        onChange={(event) => setPassword(event.target.value)}
      />
      <button type="submit" className="button button--primary" disabled={pending}>
        {pending ? 'Signing in…' : 'Sign in'}
      </button>
    </form>
  );
}

import { ErrorMessage } from '@/components';
import { useSessionStore } from '@/stores/session';
import { LoginForm } from './LoginForm';

export interface LoginPageProps {
  /** A failure other than "not signed in" while checking the session on load. */
  error?: unknown;
}

export function LoginPage({ error }: LoginPageProps) {
  const notice = useSessionStore((state) => state.notice);
  return (
    <main className="login-page">
      <div className="login-page__card">
        {notice && (
          <p role="status" className="notice">
            {notice}
          </p>
        )}
        {error ? <ErrorMessage error={error} context="Could not check your session" /> : null}
        <LoginForm />
      </div>
    </main>
  );
}

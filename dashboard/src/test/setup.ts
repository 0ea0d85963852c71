import '@testing-library/jest-dom/vitest';
import { cleanup } from '@testing-library/react';
import { afterEach } from 'vitest';
import { useSessionStore } from '@/stores/session';

afterEach(() => {
  cleanup();
  useSessionStore.setState({ user: null, csrfToken: null, status: 'unknown', notice: null });
});

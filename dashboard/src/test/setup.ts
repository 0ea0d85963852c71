import '@testing-library/jest-dom/vitest';
import { cleanup } from '@testing-library/react';
import { createElement } from 'react';
import { afterEach, vi } from 'vitest';
import { useSessionStore } from '@/stores/session';

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  useSessionStore.setState({ user: null, csrfToken: null, status: 'unknown', notice: null });
});

// jsdom has no canvas: charts render their option as a stand-in element, so tests can read it.
vi.mock('@/components/charts/EChartCore', () => ({
  default: ({ option }: { option: unknown }) =>
    createElement('div', { 'data-testid': 'chart-canvas', 'data-option': JSON.stringify(option) }),
}));

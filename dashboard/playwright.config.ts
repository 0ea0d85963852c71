import { defineConfig } from '@playwright/test';

// The platform under test is started outside (make up / the CI script); these variables point at it.
const baseURL = process.env.CLOUDOPS_E2E_URL ?? 'http://127.0.0.1:8080';
const outputRoot = process.env.CLOUDOPS_E2E_OUTPUT ?? 'test-results';

export default defineConfig({
  testDir: './e2e',
  testMatch: '**/*.spec.ts',
  outputDir: `${outputRoot}/artifacts`,
  fullyParallel: false,
  workers: 1,
  retries: 0,
  timeout: 120_000,
  expect: { timeout: 15_000 },
  reporter: [['list']],
  use: {
    baseURL,
    viewport: { width: 1366, height: 900 },
    reducedMotion: 'reduce',
    colorScheme: 'light',
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
});

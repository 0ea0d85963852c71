import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, type ConsoleMessage, type Page } from '@playwright/test';

export const env = {
  username: process.env.CLOUDOPS_E2E_USERNAME ?? 'admin',
  password: process.env.CLOUDOPS_E2E_PASSWORD ?? '',
  adminKey: process.env.CLOUDOPS_E2E_ADMIN_KEY ?? '',
  output: process.env.CLOUDOPS_E2E_OUTPUT ?? 'test-results',
};

const screenshotDir = join(env.output, 'screenshots');

export async function saveScreenshot(page: Page, view: string): Promise<void> {
  mkdirSync(screenshotDir, { recursive: true });
  await page.screenshot({ path: join(screenshotDir, `${view}.png`), fullPage: true });
}

/**
 * Failed requests the app expects and handles: the session check before sign-in (401), any 401
 * once the user has signed out (a stale tab), and endpoints that may not exist yet (404).
 */
function expectedFailure(message: ConsoleMessage, signedOut: boolean): boolean {
  const text = message.text();
  if (!text.startsWith('Failed to load resource')) return false;
  const path = new URL(message.location().url || 'http://x/').pathname;
  if (text.includes('status of 401')) return path === '/api/auth/session' || signedOut;
  if (text.includes('status of 404')) {
    return path === '/api/costs/invoices' || /^\/api\/resources\/[^/]+\/utilization$/.test(path);
  }
  return false;
}

/** Collects console errors and CSP violations of every page in the context; the test asserts none. */
export class PageProblems {
  readonly problems: string[] = [];
  signedOut = false;

  async watch(page: Page): Promise<void> {
    page.on('console', (message) => {
      if (message.type() === 'error' && !expectedFailure(message, this.signedOut)) {
        this.problems.push(`console error on ${page.url()}: ${message.text()} (${message.location().url})`);
      }
    });
    page.on('pageerror', (error) => this.problems.push(`uncaught error on ${page.url()}: ${error.message}`));
    await page.exposeBinding('__reportCspViolation', (_source, text: string) => {
      this.problems.push(`CSP violation: ${text}`);
    });
    await page.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (event) => {
        const report = (window as unknown as { __reportCspViolation: (text: string) => void }).__reportCspViolation;
        report(`${event.violatedDirective} blocked ${event.blockedURI || 'inline'} at ${event.sourceFile}:${event.lineNumber}`);
      });
    });
  }

  assertNone(): void {
    expect(this.problems, this.problems.join('\n')).toEqual([]);
  }
}

export async function signIn(page: Page): Promise<void> {
  await page.goto('/');
  await expect(page.getByRole('heading', { name: 'Sign in to CloudOps' })).toBeVisible();
  await page.getByLabel('Username').fill(env.username);
  await page.getByLabel('Password').fill(env.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Overview', level: 1 })).toBeVisible();
}

/** Reads a money figure like "$1,234.56" as cents. */
export function cents(text: string | null): number {
  const digits = (text ?? '').replace(/[^0-9.-]/g, '');
  return Math.round(Number(digits) * 100);
}

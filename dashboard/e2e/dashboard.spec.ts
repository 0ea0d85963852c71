import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, test } from '@playwright/test';
import { cents, env, PageProblems, saveScreenshot, signIn } from './support';

const FIXTURE = fileURLToPath(new URL('./fixtures/focus-1.1-small.csv', import.meta.url));
const FIXTURE_BILLED_CENTS = 100_000; // the fixture's BilledCost adds up to 1000.00 USD
const FIXTURE_VIEW = '/costs?start=2026-01-01&end=2026-01-31&group_by=account&basis=billed';

test.beforeAll(() => {
  expect(env.password, 'CLOUDOPS_E2E_PASSWORD must be set').not.toBe('');
  expect(env.adminKey, 'CLOUDOPS_E2E_ADMIN_KEY must be set').not.toBe('');
});

test('an operator works through the dashboard on the demo data', async ({ page, context, request }) => {
  const problems = new PageProblems();
  await problems.watch(page);
  const admin = { 'X-API-Key': env.adminKey };

  await test.step('sign in and see the overview', async () => {
    await signIn(page);
    await expect(page.getByText('Per hour now')).toBeVisible();
    await expect(page.getByTestId('daily-cost-chart').locator('canvas').first()).toBeVisible();
    await expect(page.getByRole('heading', { name: /Open alerts/ })).toBeVisible();
    await saveScreenshot(page, 'overview');
  });

  await test.step('see resources and filter them on the server', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Resources' }).click();
    const list = page.getByTestId('resources-list');
    await expect(list.getByRole('row').nth(1)).toBeVisible();
    await expect(list.getByText(/^[\d,]+ resources?$/)).toBeVisible();
    await saveScreenshot(page, 'resources');

    await page.getByLabel('Status').selectOption('running');
    await expect(page).toHaveURL(/status=running/);
    await expect(list.getByText(/^[\d,]+ resources?$/)).toBeVisible();
    const statuses = list.locator('[role="row"] .col-status[role="cell"]');
    await expect(statuses.first()).toHaveText('running');
    for (const text of await statuses.allTextContents()) expect(text).toBe('running');

    await page.getByLabel('Provider').selectOption('aws');
    await expect(page).toHaveURL(/provider=aws/);
    await expect(list.locator('[role="row"] .col-provider[role="cell"]').first()).toContainText('aws');

    await page.getByLabel('Sort by').selectOption('-hourly_cost');
    await expect(page).toHaveURL(/sort=-hourly_cost/);
    await expect(async () => {
      const costs = (await list.locator('[role="row"] .col-cost[role="cell"]').allTextContents()).map(cents);
      expect(costs.length).toBeGreaterThan(1);
      expect(costs).toEqual([...costs].sort((a, b) => b - a));
    }).toPass();

    // The filtered view survives a reload: it lives in the URL.
    await page.reload();
    await expect(page.getByLabel('Status')).toHaveValue('running');
    await expect(page.getByLabel('Provider')).toHaveValue('aws');

    await list.getByRole('row').nth(1).getByRole('button').click();
    const details = page.getByRole('complementary');
    await expect(details.getByRole('heading', { name: 'Utilisation (7 days)' })).toBeVisible();
    await expect(details.getByRole('heading', { name: 'Cost (30 days)' })).toBeVisible();
    await expect(details.getByText(/Total: \$|No billed cost/)).toBeVisible();
    // The chart's code arrives lazily: the view is done once it is drawn (or says there is none).
    const utilisation = details.getByRole('region', { name: 'Utilisation (7 days)' });
    await expect(
      utilisation.locator('canvas').first().or(utilisation.getByText('No utilisation samples yet')),
    ).toBeVisible();
    await saveScreenshot(page, 'resource-detail');
    await page.getByRole('button', { name: 'Clear filters' }).click();
    await expect(page).not.toHaveURL(/status=/);
  });

  await test.step('open the cost view', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Costs' }).click();
    await expect(page.getByRole('heading', { name: 'Cost breakdown' })).toBeVisible();
    await expect(page.getByTestId('breakdown-total-USD')).toBeVisible();
    await page.getByLabel('Group by').selectOption('provider');
    await expect(page).toHaveURL(/group_by=provider/);
    await expect(page.getByRole('columnheader', { name: 'Provider' })).toBeVisible();
    await expect(page.getByRole('link', { name: 'FOCUS CSV' })).toHaveAttribute('href', /\/api\/costs\/export\/focus\.csv\?.*group_by=provider/);
    for (const name of ['Daily CSV', 'FOCUS CSV']) {
      const href = await page.getByRole('link', { name }).getAttribute('href');
      const exported = await page.request.get(href ?? '');
      expect(exported.ok(), `${name}: HTTP ${exported.status()}`).toBeTruthy();
      expect(exported.headers()['content-type']).toContain('text/csv');
      expect((await exported.text()).split('\n').length).toBeGreaterThan(2);
    }
    await expect(page.getByRole('heading', { name: 'Invoices' })).toBeVisible();
    await saveScreenshot(page, 'costs');
  });

  await test.step('find savings', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Savings' }).click();
    await page.getByTestId('optimize-button').click();
    const recommendations = page.getByTestId('recommendations');
    await expect(recommendations).toBeVisible();
    await expect(recommendations.getByTestId('savings-total')).toContainText(/\$[\d,]+\.\d\d\/month/);
    const savings = await recommendations.locator('tbody tr td.num').allTextContents();
    expect(savings.length).toBeGreaterThan(0);
    const amounts = savings.map((text) => cents(text));
    expect(amounts).toEqual([...amounts].sort((a, b) => b - a));
    await saveScreenshot(page, 'savings');
  });

  await test.step('a backend event raises an alert that appears live, and it is acknowledged', async () => {
    const running = await request.get('/api/resources?status=running&limit=1&sort=-hourly_cost', { headers: admin });
    expect(running.ok()).toBeTruthy();
    const [resource] = ((await running.json()) as { data: { id: string; name: string }[] }).data;
    expect(resource).toBeDefined();
    if (!resource) return;

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Overview' }).click();
    const feed = page.getByRole('region', { name: /Open alerts/ });
    await expect(feed).toBeVisible();
    await expect(feed.getByText(/Live/)).toBeVisible();
    const heading = feed.getByRole('heading', { name: /Open alerts/ });
    const openCount = async () => Number((/\((\d+)\)/.exec((await heading.textContent()) ?? '') ?? [0, 0])[1]);
    const before = await openCount();

    const patched = await request.patch(`/api/resources/${resource.id}`, { headers: admin, data: { status: 'error' } });
    expect(patched.ok(), await patched.text()).toBeTruthy();

    // The new alert arrives over the live stream: the open count grows and it is listed, no reload.
    const title = new RegExp(`${resource.name} is in error|ResourceInError`);
    await expect.poll(openCount, { timeout: 30_000 }).toBeGreaterThan(before);
    await expect(feed.getByRole('listitem').filter({ hasText: title }).filter({ hasText: /firing/i })).toHaveCount(1);
    await saveScreenshot(page, 'overview-alert');

    await feed.getByRole('link', { name: 'All alerts' }).click();
    const row = page.getByRole('row').filter({ hasText: title }).filter({ hasText: /firing/i }).first();
    await row.getByRole('button', { name: /Details of/ }).click();
    const detail = page.getByRole('region', { name: 'Alert details' });
    await detail.getByRole('button', { name: 'Acknowledge' }).click();
    await expect(detail.getByText('acknowledged', { exact: false }).first()).toBeVisible();
    await expect(detail.getByRole('button', { name: 'Acknowledge' })).toBeDisabled();
    await saveScreenshot(page, 'alerts');

    // Put the resource back, which resolves the alert, so a second run starts from the same state.
    const restored = await request.patch(`/api/resources/${resource.id}`, { headers: admin, data: { status: 'running' } });
    expect(restored.ok()).toBeTruthy();
  });

  await test.step('import a FOCUS file and see the totals change', async () => {
    await page.goto(FIXTURE_VIEW);
    await expect(page.getByRole('heading', { name: 'Cost breakdown' })).toBeVisible();
    const totalCell = page.getByTestId('breakdown-total-USD');
    await expect(totalCell.or(page.getByText('No costs in this range'))).toBeVisible();
    const before = (await totalCell.count()) > 0 ? cents(await totalCell.textContent()) : 0;

    // A billing account of its own, so the import adds to (and never replaces) earlier runs' rows.
    const account = `e2e-${Date.now()}`;
    const csv = readFileSync(FIXTURE, 'utf8').replaceAll('e2e-billing-account', account);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Imports' }).click();
    await page.getByLabel('FOCUS file (.csv or .csv.gz)').setInputFiles({
      name: 'focus-1.1-small.csv',
      mimeType: 'text/csv',
      buffer: Buffer.from(csv),
    });
    await page.getByRole('button', { name: 'Upload and import' }).click();
    const result = page.getByRole('region', { name: 'Import result' });
    await expect(result).toContainText(/succeeded/i, { timeout: 60_000 });
    await saveScreenshot(page, 'imports');

    await page.goto(FIXTURE_VIEW);
    await expect(page.getByTestId('breakdown-total-USD')).toBeVisible();
    await expect(page.getByRole('cell', { name: account })).toBeVisible();
    expect(cents(await page.getByTestId('breakdown-total-USD').textContent())).toBe(before + FIXTURE_BILLED_CENTS);
  });

  await test.step('the admin view is there for an admin', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Admin' }).click();
    await expect(page.getByRole('heading', { level: 1 })).toBeVisible();
    await saveScreenshot(page, 'admin');
  });

  await test.step('log out; a stale tab then gets the login page, not an error', async () => {
    const stale = await context.newPage();
    await problems.watch(stale);
    await stale.goto('/resources');
    await expect(stale.getByTestId('resources-list')).toBeVisible();

    problems.signedOut = true;
    await page.getByRole('button', { name: 'Log out' }).click();
    await expect(page.getByRole('heading', { name: 'Sign in to CloudOps' })).toBeVisible();
    await saveScreenshot(page, 'login');

    await stale.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Costs' }).click();
    await expect(stale.getByRole('heading', { name: 'Sign in to CloudOps' })).toBeVisible();
    await expect(stale.getByRole('alert')).toHaveCount(0);
    await stale.close();
  });

  problems.assertNone();
});

// Dashboard load and scroll figures in headless Chromium, against a running platform.
//
// Measures, on the demo data of `make up`:
// - time from navigation to: the app shell (Overview heading), the cost chart's canvas, and the
//   first resource rows (on /resources), each the median of --runs cold loads (fresh context);
// - JavaScript transferred on first load of the overview (compressed bytes on the wire), split
//   into what index.html pulls in and what is loaded lazily (the chart library);
// - the frame rate while scrolling a 10,000-row resource list. The demo fleet is smaller, so the
//   list API answers for this part are synthesised in the browser (page.route): what is measured
//   is the page's rendering, not the server.
//
// Usage: CLOUDOPS_E2E_URL=http://127.0.0.1:8080 CLOUDOPS_E2E_USERNAME=admin \
//        CLOUDOPS_E2E_PASSWORD=... node bench/dashboard_bench.mjs [--runs 5] [--scroll-seconds 5]
// Needs `npm ci` in dashboard/ (Playwright comes from there) and /usr/bin/chromium.

import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

const require = createRequire(new URL('../dashboard/package.json', import.meta.url));
const { chromium } = require('@playwright/test');

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    'scroll-seconds': { type: 'string', default: '5' },
  },
});
const baseURL = process.env.CLOUDOPS_E2E_URL ?? 'http://127.0.0.1:8080';
const username = process.env.CLOUDOPS_E2E_USERNAME ?? 'admin';
const password = process.env.CLOUDOPS_E2E_PASSWORD ?? '';
const runs = Number(args.runs);
const scrollSeconds = Number(args['scroll-seconds']);
const ROWS = 10_000;

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});

async function signedInContext() {
  const context = await browser.newContext({ baseURL, viewport: { width: 1366, height: 900 }, reducedMotion: 'reduce' });
  const response = await context.request.post('/api/auth/login', { data: { username, password } });
  if (!response.ok()) throw new Error(`login failed: HTTP ${response.status()} ${await response.text()}`);
  return context;
}

/**
 * Installed before the page's own scripts: records when each watched element first appears
 * (performance.now(), i.e. ms since navigation start) and every long task (> 50 ms) of the main
 * thread, so no figure waits on the test driver.
 */
function watchMarks(selectors) {
  const marks = {};
  const longTasks = [];
  window.__benchMarks = marks;
  window.__benchLongTasks = longTasks;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) longTasks.push([entry.startTime, entry.startTime + entry.duration]);
  }).observe({ type: 'longtask', buffered: true });
  const check = () => {
    for (const [name, selector] of Object.entries(selectors)) {
      if (!(name in marks) && document.querySelector(selector)) marks[name] = performance.now();
    }
  };
  new MutationObserver(check).observe(document, { childList: true, subtree: true, attributes: true });
}

const SELECTORS = {
  shell: 'main h1',
  figures: '.stat dd',
  chart: '[data-testid="daily-cost-chart"] canvas',
  rows: '[data-testid="resources-list"] [role="row"][data-index]',
};

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

async function coldLoad(entryScripts) {
  const context = await signedInContext();
  await context.addInitScript(watchMarks, SELECTORS);
  const page = await context.newPage();
  const scripts = [];
  const client = await context.newCDPSession(page);
  await client.send('Network.enable');
  const types = new Map();
  client.on('Network.responseReceived', (event) => types.set(event.requestId, { type: event.type, url: event.response.url }));
  client.on('Network.loadingFinished', (event) => {
    const seen = types.get(event.requestId);
    if (seen?.type === 'Script') scripts.push({ url: new URL(seen.url).pathname, bytes: event.encodedDataLength });
  });
  await page.goto('/');
  await page.waitForSelector(SELECTORS.chart, { state: 'attached', timeout: 30_000 });
  await page.waitForTimeout(1500); // a quiet window after the chart, to see the last long task
  const overview = await page.evaluate(() => ({
    marks: { ...window.__benchMarks },
    longTasks: [...window.__benchLongTasks],
    ready: performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd,
  }));
  // Interactive: the shell is shown and the main thread has finished its last long task.
  const lastLongTaskEnd = Math.max(0, ...overview.longTasks.map(([, end]) => end));
  const interactive = Math.max(overview.marks.shell, lastLongTaskEnd);

  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Resources' }).click();
  const clicked = await page.evaluate(() => performance.now());
  await page.waitForSelector(SELECTORS.rows, { timeout: 60_000 });
  const rowsShown = await page.evaluate(() => window.__benchMarks.rows);
  const initial = scripts.filter((s) => entryScripts.has(s.url)).reduce((sum, s) => sum + s.bytes, 0);
  const total = scripts.reduce((sum, s) => sum + s.bytes, 0);
  await context.close();
  return {
    ready: overview.ready,
    shell: overview.marks.shell,
    figures: overview.marks.figures,
    chart: overview.marks.chart,
    interactive,
    longTasks: overview.longTasks.length,
    list: rowsShown - clicked,
    initial,
    total,
  };
}

async function scrollFrameRate() {
  const context = await signedInContext();
  const page = await context.newPage();
  await page.route('**/api/resources?*', async (route) => {
    const url = new URL(route.request().url());
    const limit = Number(url.searchParams.get('limit') ?? 20);
    const offset = Number(url.searchParams.get('offset') ?? 0);
    const data = Array.from({ length: Math.max(0, Math.min(limit, ROWS - offset)) }, (_, i) => {
      const n = offset + i;
      return {
        id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`, external_id: `bench-${n}`,
        name: `bench-resource-${String(n).padStart(5, '0')}`, provider: ['aws', 'gcp', 'azure'][n % 3],
        type: 'compute', region: 'us-east-1', account: 'bench', status: ['running', 'stopped', 'error'][n % 3],
        hourly_cost: '0.1250000000', currency: 'USD', tags: {}, owner: null, team: 'bench',
        cpu_utilization: null, memory_utilization: null, created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z',
      };
    });
    await route.fulfill({ json: { success: true, data, meta: { total: ROWS, limit, offset } } });
  });
  await page.goto('/resources');
  await page.waitForSelector('[data-testid="resources-list"] [role="row"][data-index]');
  const result = await page.evaluate(async (seconds) => {
    const scroller = document.querySelector('.vtable__scroll');
    // Baseline: the same page's frame rate with nothing scrolling (what this browser and machine give).
    const idle = [];
    await new Promise((resolve) => {
      let previous = performance.now();
      const stop = previous + 2000;
      const tick = (now) => {
        idle.push(now - previous);
        previous = now;
        if (now < stop) requestAnimationFrame(tick);
        else resolve();
      };
      requestAnimationFrame(tick);
    });
    const frames = [];
    let last = performance.now();
    const end = last + seconds * 1000;
    // ~2,400 px/s: a fast, steady flick through the list; pages load as it goes.
    await new Promise((resolve) => {
      const step = (now) => {
        frames.push(now - last);
        last = now;
        scroller.scrollTop += 40;
        if (now < end) requestAnimationFrame(step);
        else resolve();
      };
      requestAnimationFrame(step);
    });
    const elapsed = frames.reduce((a, b) => a + b, 0);
    return {
      idleFps: (idle.length / idle.reduce((a, b) => a + b, 0)) * 1000,
      fps: (frames.length / elapsed) * 1000,
      longFrames: frames.filter((f) => f > 50).length,
      worstFrame: Math.max(...frames),
      reachedRow: Math.round(scroller.scrollTop / 44),
      domRows: document.querySelectorAll('[data-testid="resources-list"] [role="row"][data-index]').length,
    };
  }, scrollSeconds);
  await context.close();
  return result;
}

// What index.html itself loads (entry script and its module preloads): the first-load JS.
const indexHtml = await (await fetch(new URL('/', baseURL))).text();
const entryScripts = new Set([...indexHtml.matchAll(/(?:src|href)="(\/assets\/[^"]+\.js)"/g)].map((m) => m[1]));
const loads = [];
for (let i = 0; i < runs; i += 1) loads.push(await coldLoad(entryScripts));
const scroll = await scrollFrameRate();
await browser.close();

const kb = (bytes) => `${(bytes / 1024).toFixed(1)} kB`;
console.log(`dashboard bench against ${baseURL}, ${runs} cold loads (median)`);
console.log(`  baseline: DOMContentLoaded (HTML + entry JS)   ${median(loads.map((l) => l.ready)).toFixed(0)} ms`);
const ms = (key) => `${median(loads.map((l) => l[key])).toFixed(0)} ms`;
console.log(`  app shell (Overview heading) shown   ${ms('shell')}`);
console.log(`  cost figures shown                   ${ms('figures')}`);
console.log(`  cost chart canvas shown              ${ms('chart')}`);
console.log(`  interactive (shell + last long task) ${ms('interactive')}   goal < 1500 ms (long tasks: ${median(loads.map((l) => l.longTasks))})`);
console.log(`  resource rows shown after nav click  ${ms('list')}`);
console.log(`  JS on first load (index.html)        ${kb(median(loads.map((l) => l.initial)))} on the wire (${entryScripts.size} files)   goal < 250 kB`);
console.log(`  JS incl. lazy chart chunk            ${kb(median(loads.map((l) => l.total)))} on the wire`);
console.log(`  scroll of ${ROWS.toLocaleString('en-US')} rows for ${scrollSeconds} s       ${scroll.fps.toFixed(1)} fps (idle baseline ${scroll.idleFps.toFixed(1)} fps), ${scroll.longFrames} frames > 50 ms, worst ${scroll.worstFrame.toFixed(0)} ms, reached row ${scroll.reachedRow}, ${scroll.domRows} rows in the DOM`);

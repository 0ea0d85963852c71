import { act, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { useSessionStore } from '@/stores/session';
import { ok, stubFetch } from '@/test/fetch';

import { lastXhr, stubXhr } from '../testing/fake-xhr';
import type { ImportRecord } from '../types';
import { ImportsPage } from './ImportsPage';

beforeEach(() => {
  useSessionStore.setState({
    user: { username: 'fin', permissions: ['read', 'write'] },
    csrfToken: 'csrf-imports',
    status: 'authenticated',
  });
  stubXhr();
});

afterEach(() => {
  vi.unstubAllGlobals();
});

// Typing through a whole form is slow on a busy machine; the default 5 s is not enough there.
vi.setConfig({ testTimeout: 20_000 });

function record(overrides: Partial<ImportRecord> = {}): ImportRecord {
  return {
    id: '9b0d1a52-0000-4000-8000-000000000001',
    filename: 'march focus.csv',
    status: 'succeeded',
    focus_version: '1.1',
    sha256: 'ab'.repeat(32),
    rows_read: 1200,
    rows_accepted: 1197,
    rows_rejected: 3,
    rows_replaced: 0,
    error: null,
    created_by: 'fin',
    started_at: '2026-11-30T07:00:00Z',
    finished_at: '2026-11-30T07:00:05Z',
    rejections: [
      { line: 14, field: 'BilledCost', message: 'not a valid decimal' },
      { line: 90, field: 'ChargePeriodStart', message: 'must not be null' },
    ],
    ...overrides,
  };
}

async function chooseAndUpload(name: string, content = 'BilledCost,BillingCurrency\n1.00,USD\n') {
  const user = userEvent.setup({ delay: null });
  render(<ImportsPage />);
  const file = new File([content], name, { type: name.endsWith('.gz') ? 'application/gzip' : 'text/csv' });
  await user.upload(screen.getByLabelText('FOCUS file (.csv or .csv.gz)'), file);
  await user.click(screen.getByRole('button', { name: 'Upload and import' }));
  return { user, file };
}

describe('ImportsPage', () => {
  it('sends the file with its name, type, session and CSRF token, showing bytes sent', async () => {
    const { file } = await chooseAndUpload('march focus.csv');
    const xhr = lastXhr();

    expect(xhr.method).toBe('POST');
    expect(xhr.url).toBe('/api/costs/imports?filename=march%20focus.csv');
    expect(xhr.headers['Content-Type']).toBe('text/csv');
    expect(xhr.headers['X-CSRF-Token']).toBe('csrf-imports');
    expect(xhr.withCredentials).toBe(true);
    expect(xhr.body).toBe(file);

    act(() => xhr.progress(5_242_880, 20_971_520));
    const bar = await screen.findByRole('progressbar', { name: 'Uploading' });
    expect(bar).toHaveAttribute('value', '5242880');
    expect(bar).toHaveAttribute('max', '20971520');
    expect(screen.getByText('5.0 MB of 20.0 MB sent (25%)')).toBeInTheDocument();

    act(() => xhr.uploaded());
    expect(await screen.findByRole('progressbar', { name: 'Importing on the server' })).not.toHaveAttribute('value');
  });

  it('sends a .gz file as application/gzip', async () => {
    await chooseAndUpload('april.csv.gz');
    expect(lastXhr().headers['Content-Type']).toBe('application/gzip');
  });

  it('shows the result: counts, findings with examples, rejections by line, reconciliation', async () => {
    await chooseAndUpload('march focus.csv');
    lastXhr().respond(201, {
      success: true,
      data: record({
        rows_with_findings: 5,
        findings: {
          enum_case: { count: 4, examples: [{ line: 7, column: 'ChargeCategory', value: 'usage', stored: 'Usage' }] },
          invalid_decimal: { count: 1, examples: [{ line: 8, column: 'ListCost', value: 'n/a', stored: null }] },
        },
        reconciliation: {
          USD: { billed: { file: '1000.50', stored: '1000.00', rejected: '0.50' } },
          EUR: { billed: { file: '0.3', stored: '0.1', rejected: '0.2' } },
        },
      }),
    });

    const result = await screen.findByRole('region', { name: 'Import result' });
    expect(within(result).getByRole('heading', { level: 2 })).toHaveTextContent('Import of march focus.csv: succeeded');
    const figures = (label: string) => within(result).getByText(label).nextElementSibling;
    expect(figures('Rows accepted')).toHaveTextContent('1,197');
    expect(figures('Rows rejected')).toHaveTextContent('3');
    expect(figures('Rows with findings')).toHaveTextContent('5');

    const enumCase = within(result).getByRole('table', { name: 'Enum case: 4 values' });
    expect(within(enumCase).getByRole('row', { name: /7 ChargeCategory usage Usage/ })).toBeInTheDocument();
    const invalid = within(result).getByRole('table', { name: 'Invalid decimal: 1 value' });
    expect(within(invalid).getByRole('row', { name: /8 ListCost n\/a null/ })).toBeInTheDocument();

    const rejected = within(result).getByRole('region', { name: 'Rejected rows' });
    expect(within(rejected).getByText('Showing the first 2 of 3 rejected rows.')).toBeInTheDocument();
    expect(within(rejected).getByRole('row', { name: '14 BilledCost not a valid decimal' })).toBeInTheDocument();

    const sums = within(result).getByRole('table', { name: /sums in the file and as stored/i });
    expect(within(sums).getByRole('row', { name: 'USD billed 1000.50 1000.00 0.50 yes' })).toBeInTheDocument();
    expect(within(sums).getByRole('row', { name: 'EUR billed 0.3 0.1 0.2 yes' })).toBeInTheDocument();
  });

  it('follows an import that is still running until it ends', async () => {
    const running = record({ status: 'running', rows_read: 400, rows_accepted: 400, finished_at: null });
    let polls = 0;
    const requests = stubFetch({
      'GET /api/costs/imports': () => {
        polls += 1;
        return ok(polls === 1 ? { ...running, rows_read: 800, rows_accepted: 800 } : record());
      },
    });
    await chooseAndUpload('march focus.csv');
    lastXhr().respond(201, { success: true, data: running });

    expect(await screen.findByText('400 rows read, 400 accepted so far…')).toBeInTheDocument();
    expect(await screen.findByText('800 rows read, 800 accepted so far…', {}, { timeout: 3000 })).toBeInTheDocument();
    expect(await screen.findByRole('region', { name: 'Import result' }, { timeout: 3000 })).toBeInTheDocument();
    expect(requests[0]?.url.pathname).toBe(`/api/costs/imports/${running.id}`);
  });

  it('shows a refused file with its reasons and request id', async () => {
    await chooseAndUpload('broken.csv');
    lastXhr().respond(
      422,
      {
        type: 'https://cloudops.example/problems/import-failed',
        title: 'Unprocessable Content',
        status: 422,
        detail: 'Import 42 failed, nothing was imported: the header lacks mandatory FOCUS columns',
        errors: [{ field: 'header', message: 'missing BilledCost' }],
        request_id: 'req-import-1',
      },
      { 'Content-Type': 'application/problem+json' },
    );

    const error = await screen.findByRole('alert');
    expect(error).toHaveTextContent('Import of broken.csv failed: Unprocessable Content');
    expect(error).toHaveTextContent('the header lacks mandatory FOCUS columns');
    expect(error).toHaveTextContent('missing BilledCost');
    expect(error).toHaveTextContent('req-import-1');
    expect(screen.getByRole('button', { name: 'Upload and import' })).toBeEnabled();
  });

  it('shows a refused import with its sums, read from the record the service kept', async () => {
    const refused = record({
      status: 'failed',
      rows_accepted: 0,
      error: { detail: 'stored sums differ from the file', errors: [] },
      reconciliation: { USD: { billed: { file: '10.00', stored: '9.00', rejected: '0.50' } } },
    });
    const requests = stubFetch({ [`GET /api/costs/imports/${refused.id}`]: ok(refused) });
    await chooseAndUpload('march focus.csv');
    lastXhr().respond(
      422,
      { title: 'Unprocessable Content', status: 422, detail: 'the sums do not reconcile', request_id: 'req-r' },
      { 'Content-Type': 'application/problem+json', 'X-Import-Id': refused.id },
    );

    const sums = await screen.findByRole('table', { name: /sums in the file and as stored/i });
    expect(within(sums).getByRole('row', { name: 'USD billed 10.00 9.00 0.50 no: the sums differ' })).toBeInTheDocument();
    expect(screen.getByRole('alert')).toHaveTextContent('req-r');
    expect(requests).toHaveLength(1);
  });

  it('says so when the connection breaks during the upload', async () => {
    await chooseAndUpload('march focus.csv');
    lastXhr().fail();
    expect(await screen.findByRole('alert')).toHaveTextContent('Network error');
  });

  it('tells a read-only account that importing needs the write permission', () => {
    useSessionStore.setState({ user: { username: 'viewer', permissions: ['read'] } });
    render(<ImportsPage />);

    expect(screen.getByRole('note')).toHaveTextContent(/needs the write permission/i);
    expect(screen.queryByRole('button', { name: 'Upload and import' })).not.toBeInTheDocument();
  });

  it('cancels an upload', async () => {
    const { user } = await chooseAndUpload('march focus.csv');
    await user.click(screen.getByRole('button', { name: 'Cancel upload' }));

    expect(lastXhr().aborted).toBe(true);
    await waitFor(() =>
      expect(screen.getByRole('status')).toHaveTextContent('The upload of march focus.csv was cancelled.'),
    );
    expect(screen.queryByRole('progressbar')).not.toBeInTheDocument();
  });
});

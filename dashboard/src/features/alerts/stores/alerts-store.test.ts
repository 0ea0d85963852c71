import { afterEach, describe, expect, it, vi } from 'vitest';

import { ApiError } from '@/lib/api';
import { ok, problem, stubFetch } from '@/test/fetch';

import { makeAlert } from '../testing/fixtures';
import { createAlertsStore, NO_FILTERS } from './alerts-store';

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('alerts store', () => {
  it('loads the page the filters ask for', async () => {
    const alerts = [makeAlert({ severity: 'critical' })];
    const requests = stubFetch({ '/api/alerts': ok(alerts, { total: 7, limit: 50, offset: 0 }) });
    const store = createAlertsStore({
      filters: { severity: ['critical'], status: ['firing', 'acknowledged'], source: ' alertmanager ' },
      limit: 50,
    });

    await store.getState().load();

    const query = requests[0]?.url.searchParams;
    expect(query?.get('severity')).toBe('critical');
    expect(query?.get('status')).toBe('firing,acknowledged');
    expect(query?.get('source')).toBe('alertmanager');
    expect(query?.get('limit')).toBe('50');
    expect(store.getState()).toMatchObject({ alerts, total: 7, loading: false, error: null });
  });

  it('keeps the API error, request id included', async () => {
    stubFetch({ '/api/alerts': problem(503, 'Service Unavailable', { request_id: 'req-42' }) });
    const store = createAlertsStore();

    await store.getState().load();

    const { error } = store.getState();
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).requestId).toBe('req-42');
  });

  it('ignores an older answer that arrives after a newer one', async () => {
    const old = makeAlert();
    const fresh = makeAlert({ severity: 'critical' });
    let releaseOld: () => void = () => undefined;
    stubFetch({
      '/api/alerts': (url) =>
        url.searchParams.has('severity')
          ? ok([fresh], { total: 1 })
          : new Promise((resolve) => {
              releaseOld = () => resolve(ok([old], { total: 1 }));
            }),
    });
    const store = createAlertsStore();

    const first = store.getState().load();
    store.getState().setFilters({ ...NO_FILTERS, severity: ['critical'] });
    await vi.waitFor(() => expect(store.getState().alerts).toEqual([fresh]));
    releaseOld();
    await first;

    expect(store.getState().alerts).toEqual([fresh]);
  });

  it('merges changes by id: adds new ones newest first, replaces known ones in place', () => {
    const older = makeAlert({ starts_at: '2026-11-30T06:00:00Z' });
    const newer = makeAlert({ starts_at: '2026-11-30T07:00:00Z' });
    const store = createAlertsStore();
    store.setState({ alerts: [newer, older], total: 2 });

    const newest = makeAlert({ starts_at: '2026-11-30T08:00:00Z' });
    store.getState().merge(newest);
    store.getState().merge({ ...older, status: 'acknowledged' });

    const { alerts, total, revisions } = store.getState();
    expect(alerts.map((a) => a.id)).toEqual([newest.id, newer.id, older.id]);
    expect(alerts[2]?.status).toBe('acknowledged');
    expect(total).toBe(3);
    expect(revisions[older.id]).toBe(1);
  });

  it('drops an alert that no longer matches the filters, and ignores unknown ones that do not', () => {
    const firing = makeAlert();
    const store = createAlertsStore({ filters: { ...NO_FILTERS, status: ['firing'] } });
    store.setState({ alerts: [firing], total: 1 });

    store.getState().merge({ ...firing, status: 'resolved' });
    store.getState().merge(makeAlert({ status: 'resolved' }));

    expect(store.getState().alerts).toEqual([]);
    expect(store.getState().total).toBe(0);
  });

  it('keeps a change that arrives while the list is loading', async () => {
    const listed = makeAlert({ updated_at: '2026-11-30T07:00:00Z' });
    const raised = makeAlert({ starts_at: '2026-11-30T07:30:00Z' });
    let answer: () => void = () => undefined;
    stubFetch({
      '/api/alerts': () =>
        new Promise((resolve) => {
          answer = () => resolve(ok([listed], { total: 1 }));
        }),
    });
    const store = createAlertsStore();

    const loading = store.getState().load();
    store.getState().merge(raised);
    store.getState().merge({ ...listed, status: 'acknowledged', updated_at: '2026-11-30T07:31:00Z' });
    answer();
    await loading;

    const { alerts, total } = store.getState();
    expect(alerts.map((a) => [a.id, a.status])).toEqual([
      [raised.id, 'firing'],
      [listed.id, 'acknowledged'],
    ]);
    expect(total).toBe(2);
  });

  it('prefers the listed alert when it is newer than a change seen during the load', async () => {
    const listed = makeAlert({ status: 'resolved', updated_at: '2026-11-30T07:40:00Z' });
    let answer: () => void = () => undefined;
    stubFetch({
      '/api/alerts': () =>
        new Promise((resolve) => {
          answer = () => resolve(ok([listed], { total: 1 }));
        }),
    });
    const store = createAlertsStore();

    const loading = store.getState().load();
    store.getState().merge({ ...listed, status: 'firing', updated_at: '2026-11-30T07:00:00Z' });
    answer();
    await loading;

    expect(store.getState().alerts.map((a) => a.status)).toEqual(['resolved']);
  });

  it('keeps at most its limit of alerts', () => {
    const store = createAlertsStore({ limit: 2 });
    for (const hour of ['05', '06', '07']) {
      store.getState().merge(makeAlert({ starts_at: `2026-11-30T${hour}:00:00Z` }));
    }
    const { alerts, total } = store.getState();
    expect(alerts.map((a) => a.starts_at)).toEqual(['2026-11-30T07:00:00Z', '2026-11-30T06:00:00Z']);
    expect(total).toBe(3);
  });
});

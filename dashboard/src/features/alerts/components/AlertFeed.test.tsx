import { render, screen, waitFor } from '@testing-library/react';
import { MemoryRouter } from 'react-router';
import { afterEach, describe, expect, it, vi } from 'vitest';

import { ok } from '@/test/fetch';

import { makeAlert, stubAlertsApi } from '../testing/fixtures';
import { AlertFeed } from './AlertFeed';

afterEach(() => {
  vi.unstubAllGlobals();
});

function renderFeed() {
  render(
    <MemoryRouter>
      <AlertFeed limit={3} />
    </MemoryRouter>,
  );
}

describe('AlertFeed', () => {
  it('lists the newest open alerts and links to all of them', async () => {
    const feed = stubAlertsApi({
      '/api/alerts': ok([makeAlert({ severity: 'critical', annotations: { title: 'API errors' } })], {
        total: 9,
      }),
    });
    renderFeed();

    const title = await screen.findByRole('link', { name: 'API errors' });
    expect(title.getAttribute('href')).toMatch(/^\/alerts\?alert=/);
    expect(screen.getByRole('heading', { name: 'Open alerts (9)' })).toBeInTheDocument();
    expect(screen.getByText('critical')).toBeInTheDocument();
    expect(screen.getByRole('link', { name: 'All alerts' })).toHaveAttribute('href', '/alerts');
    const query = feed.requests[0]?.url.searchParams;
    expect(query?.get('status')).toBe('firing,acknowledged');
    expect(query?.get('limit')).toBe('3');
  });

  it('adds raised alerts and drops resolved ones as the live feed reports them', async () => {
    const open = makeAlert({ annotations: { title: 'Queue backlog' } });
    const feed = stubAlertsApi({ '/api/alerts': ok([open], { total: 1 }) });
    renderFeed();
    await screen.findByText('Queue backlog');
    await screen.findByText(/live: new alerts appear/i);

    feed.send('alert.raised', makeAlert({ annotations: { title: 'Budget crossed' } }), '5-0');
    feed.send('alert.resolved', { ...open, status: 'resolved' }, '6-0');

    expect(await screen.findByText('Budget crossed')).toBeInTheDocument();
    await waitFor(() => expect(screen.queryByText('Queue backlog')).not.toBeInTheDocument());
  });

  it('says so when nothing is open', async () => {
    stubAlertsApi({ '/api/alerts': ok([], { total: 0 }) });
    renderFeed();
    expect(await screen.findByText('No open alerts')).toBeInTheDocument();
  });
});

import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { ApiError } from '@/lib/api';
import { EmptyState } from './EmptyState';
import { ErrorBoundary } from './ErrorBoundary';
import { ErrorMessage } from './ErrorMessage';
import { Loading } from './Loading';
import { SeverityBadge } from './SeverityBadge';
import { StatusBadge } from './StatusBadge';

describe('ErrorMessage', () => {
  it('shows the title, detail, field errors and request id of an API error', () => {
    const error = new ApiError({
      status: 422,
      title: 'Invalid request',
      detail: 'One field is wrong.',
      requestId: 'req-42',
      errors: [{ field: 'amount', message: 'must be positive' }],
    });
    render(<ErrorMessage error={error} context="Could not save" />);
    const alert = screen.getByRole('alert');
    expect(alert).toHaveTextContent('Could not save: Invalid request');
    expect(alert).toHaveTextContent('One field is wrong.');
    expect(alert).toHaveTextContent('amount: must be positive');
    expect(alert).toHaveTextContent('Request id: req-42');
  });

  it('shows a plain error readably', () => {
    render(<ErrorMessage error={new Error('boom')} />);
    expect(screen.getByRole('alert')).toHaveTextContent('Something went wrong');
    expect(screen.getByRole('alert')).toHaveTextContent('boom');
  });
});

describe('small components', () => {
  it('announces loading', () => {
    render(<Loading label="Loading costs…" />);
    expect(screen.getByRole('status')).toHaveTextContent('Loading costs…');
  });

  it('shows an empty state with its body', () => {
    render(<EmptyState title="Nothing here">Import a file.</EmptyState>);
    expect(screen.getByText('Nothing here')).toBeInTheDocument();
    expect(screen.getByText('Import a file.')).toBeInTheDocument();
  });

  it('labels statuses and severities with their text and tone', () => {
    render(
      <>
        <StatusBadge status="error" />
        <SeverityBadge severity="warning" />
      </>,
    );
    expect(screen.getByText('error')).toHaveClass('badge--bad');
    expect(screen.getByText('warning')).toHaveClass('badge--warn');
  });
});

describe('ErrorBoundary', () => {
  it('replaces what failed to render with a message and renders it again on "Try again"', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    let broken = true;
    const onReset = vi.fn(() => {
      broken = false;
    });
    function Figures() {
      if (broken) throw new TypeError("Cannot read properties of undefined (reading 'USD')");
      return <p>All figures</p>;
    }
    render(
      <ErrorBoundary title="CloudOps could not be shown" onReset={onReset}>
        <Figures />
      </ErrorBoundary>,
    );
    const alert = screen.getByRole('alert');
    expect(alert).toHaveTextContent('CloudOps could not be shown');
    expect(alert).toHaveTextContent("reading 'USD'");
    await userEvent.click(screen.getByRole('button', { name: 'Try again' }));
    expect(onReset).toHaveBeenCalledOnce();
    expect(screen.getByText('All figures')).toBeInTheDocument();
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();
    vi.restoreAllMocks();
  });
});

import { render, screen } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { ApiError } from '@/lib/api';
import { EmptyState } from './EmptyState';
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

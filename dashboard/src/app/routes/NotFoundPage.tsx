import { Link } from 'react-router';
import { EmptyState } from '@/components';

export function NotFoundPage() {
  return (
    <EmptyState title="Page not found">
      <Link to="/">Go to the overview</Link>
    </EmptyState>
  );
}

export { EmptyState, type EmptyStateProps } from './EmptyState';
export { ErrorBoundary, type ErrorBoundaryProps } from './ErrorBoundary';
export { ErrorMessage, type ErrorMessageProps } from './ErrorMessage';
export { Field, type FieldProps } from './Field';
export { Loading, type LoadingProps } from './Loading';
export { SeverityBadge, type SeverityBadgeProps } from './SeverityBadge';
export { StatusBadge, type StatusBadgeProps } from './StatusBadge';

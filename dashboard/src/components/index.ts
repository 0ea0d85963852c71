export { EmptyState, type EmptyStateProps } from './EmptyState';
export { ErrorMessage, type ErrorMessageProps } from './ErrorMessage';
export { Loading, type LoadingProps } from './Loading';
export { SeverityBadge, type SeverityBadgeProps } from './SeverityBadge';
export { StatusBadge, type StatusBadgeProps } from './StatusBadge';

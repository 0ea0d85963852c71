export interface LoadingProps {
  label?: string;
}

/** A polite, announced loading indicator. */
export function Loading({ label = 'Loading…' }: LoadingProps) {
  return (
    <div role="status" aria-live="polite" className="loading">
      <span className="loading__spinner" aria-hidden="true" />
      <span>{label}</span>
    </div>
  );
}

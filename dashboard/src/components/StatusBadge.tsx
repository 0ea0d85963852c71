export interface StatusBadgeProps {
  status: string;
}

const STATUS_TONE: Record<string, string> = {
  running: 'ok',
  active: 'ok',
  available: 'ok',
  completed: 'ok',
  resolved: 'ok',
  pending: 'info',
  provisioning: 'info',
  processing: 'info',
  stopped: 'muted',
  terminated: 'muted',
  deleted: 'muted',
  acknowledged: 'muted',
  error: 'bad',
  failed: 'bad',
  open: 'warn',
  degraded: 'warn',
};

/** A resource, alert or import status as a coloured label; the text carries the meaning. */
export function StatusBadge({ status }: StatusBadgeProps) {
  const tone = STATUS_TONE[status.toLowerCase()] ?? 'info';
  return <span className={`badge badge--${tone}`}>{status}</span>;
}

export interface SeverityBadgeProps {
  severity: string;
}

const SEVERITY_TONE: Record<string, string> = {
  critical: 'bad',
  high: 'bad',
  error: 'bad',
  warning: 'warn',
  medium: 'warn',
  low: 'info',
  info: 'info',
};

export function SeverityBadge({ severity }: SeverityBadgeProps) {
  const tone = SEVERITY_TONE[severity.toLowerCase()] ?? 'info';
  return <span className={`badge badge--${tone}`}>{severity}</span>;
}

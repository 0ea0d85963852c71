/** Alerts as the alerts service renders them (`Alert.public()` in services/alerts). */

export const SEVERITIES = ['critical', 'warning', 'info'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const ALERT_STATUSES = ['firing', 'acknowledged', 'resolved'] as const;
export type AlertStatus = (typeof ALERT_STATUSES)[number];

export interface Alert {
  id: string;
  fingerprint: string;
  source: string;
  severity: Severity;
  status: AlertStatus;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  starts_at: string;
  ends_at: string | null;
  generator_url: string | null;
  observed_at: string;
  suppressed: boolean;
  silenced_by: string[];
  inhibited_by: string[];
  acknowledged_by: string | null;
  acknowledged_at: string | null;
  resolved_by: string | null;
  resolved_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface HistoryEntry {
  at: string;
  actor: string;
  action: string;
  from_status: AlertStatus | null;
  to_status: AlertStatus | null;
  comment: string | null;
}

export interface AlertWithHistory extends Alert {
  history: HistoryEntry[];
}

export interface AlertFilters {
  severity: Severity[];
  status: AlertStatus[];
  source: string;
}

/** A label matcher in Alertmanager's v2 form. */
export interface Matcher {
  name: string;
  value: string;
  isRegex: boolean;
  isEqual: boolean;
}

export interface SilenceInput {
  matchers: Matcher[];
  startsAt?: string;
  endsAt: string;
  comment: string;
}

export interface Silence {
  id: string;
  matchers: Matcher[];
  starts_at: string;
  ends_at: string;
  created_by: string;
  comment: string;
  state: 'pending' | 'active' | 'expired';
}

/** The event names the live feed sends (`changes.add(...)` in the alert book). */
export type AlertEventKind =
  | 'alert.raised'
  | 'alert.updated'
  | 'alert.acknowledged'
  | 'alert.resolved'
  | 'alert.commented';

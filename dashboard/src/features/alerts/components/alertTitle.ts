import type { Alert } from '../types';

/**
 * What a person calls the alert: the title our rules write, else the summary Alertmanager alerts
 * carry, else the rule name, else a short fingerprint. Blank values count as missing.
 */
export function alertTitle(alert: Alert): string {
  const candidates = [alert.annotations.title, alert.annotations.summary, alert.labels.alertname];
  return candidates.find((text) => text !== undefined && text.trim() !== '') ?? `Alert ${alert.fingerprint.slice(0, 8)}`;
}

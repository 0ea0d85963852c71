import type { Alert } from '../types';

/** What a person calls the alert: its summary, else its rule name, else a short fingerprint. */
export function alertTitle(alert: Alert): string {
  return (
    alert.annotations.summary ?? alert.labels.alertname ?? `Alert ${alert.fingerprint.slice(0, 8)}`
  );
}

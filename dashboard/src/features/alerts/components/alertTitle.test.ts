import { describe, expect, it } from 'vitest';
import { makeAlert } from '../testing/fixtures';
import { alertTitle } from './alertTitle';

describe('alertTitle', () => {
  it.each([
    ['the title our rules write', { title: 'Resource in error' }, { alertname: 'ResourceError' }, 'Resource in error'],
    ['the title before an Alertmanager summary', { title: 'Disk full', summary: 'disk /var at 99%' }, {}, 'Disk full'],
    ['an Alertmanager summary', { summary: 'API errors above 5%' }, { alertname: 'ApiErrors' }, 'API errors above 5%'],
    ['the rule name without annotations', {}, { alertname: 'BudgetCrossed' }, 'BudgetCrossed'],
    ['the rule name when the title is blank', { title: ' ' }, { alertname: 'QueueBacklog' }, 'QueueBacklog'],
    ['a short fingerprint when nothing names it', {}, {}, 'Alert abcdef12'],
  ])('uses %s', (_case, annotations: Record<string, string>, labels: Record<string, string>, expected) => {
    expect(alertTitle(makeAlert({ annotations, labels, fingerprint: 'abcdef1234567890' }))).toBe(expected);
  });
});

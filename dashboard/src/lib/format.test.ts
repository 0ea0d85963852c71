import { describe, expect, it } from 'vitest';
import { formatMoney } from './format';

describe('formatMoney', () => {
  it.each([
    ['90071992547409.93', 'USD', '$90,071,992,547,409.93'],
    ['1234.5', 'USD', '$1,234.50'],
    ['0.0125', 'USD', '$0.0125'],
    ['3.00', 'EUR', '€3.00'],
    [0, 'USD', '$0.00'],
    [null, 'USD', '—'],
    ['n/a', 'USD', 'n/a'],
  ])('shows %j %s as %s', (value, currency, shown) => {
    expect(formatMoney(value, currency)).toBe(shown);
  });
});

import { describe, expect, it } from 'vitest';

import { columnTitle, reconciliationRows } from './reconciliation';

describe('reconciliationRows', () => {
  it('reads a map of currency to cost basis to sums', () => {
    expect(
      reconciliationRows({ EUR: { billed: { file: '10.00', stored: '10.00' }, list: '12.00' } }),
    ).toEqual([
      { currency: 'EUR', basis: 'billed', values: { file: '10.00', stored: '10.00' } },
      { currency: 'EUR', basis: 'list', values: { amount: '12.00' } },
    ]);
  });

  it('reads a list of rows that name their currency and basis', () => {
    expect(
      reconciliationRows([
        { currency: 'USD', basis: 'effective', file_sum: '5', stored_sum: '4', balanced: false },
      ]),
    ).toEqual([
      { currency: 'USD', basis: 'effective', values: { file_sum: '5', stored_sum: '4', balanced: 'no' } },
    ]);
  });

  it('reads a map of currency to a list of rows', () => {
    expect(reconciliationRows({ JPY: [{ basis: 'billed', file: '100' }] })).toEqual([
      { currency: 'JPY', basis: 'billed', values: { file: '100' } },
    ]);
  });

  it.each([undefined, null, 'text', 3])('finds no rows in %s', (value) => {
    expect(reconciliationRows(value)).toEqual([]);
  });

  it('titles a column from its key', () => {
    expect(columnTitle('stored_sum')).toBe('Stored sum');
  });
});

import { describe, expect, it } from 'vitest';

import { addsUp, columnTitle, reconciliationRows } from './reconciliation';

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

describe('addsUp', () => {
  it.each([
    [{ file: '0.3', stored: '0.1', rejected: '0.2' }, true],
    [{ file: '1E+2', stored: '99.99', rejected: '0.01' }, true],
    [{ file: '0E-10', stored: '0', rejected: '-0.00' }, true],
    [{ file: '-5.5', stored: '-6', rejected: '0.5' }, true],
    [{ file: '10.00', stored: '9.00', rejected: '0.50' }, false],
    [{ file: '12345678901234567890.000000001', stored: '12345678901234567890', rejected: '0.000000001' }, true],
  ])('is exact for %o', (values, expected) => {
    expect(addsUp(values)).toBe(expected);
  });

  it('has no answer without the three sums or with text that is not a number', () => {
    expect(addsUp({ file: '1', stored: '1' })).toBeUndefined();
    expect(addsUp({ file: 'n/a', stored: '1', rejected: '0' })).toBeUndefined();
  });

  it('reads exponents', () => {
    expect(addsUp({ file: '1.5E-3', stored: '0.001', rejected: '0.0005' })).toBe(true);
  });
});

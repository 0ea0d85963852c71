import { describe, expect, it } from 'vitest';
import { compareDecimals, parseDecimal, sumDecimals } from './decimal';

describe('parseDecimal', () => {
  it('reads plain and exponent notation exactly, and rejects what is not a number', () => {
    expect(parseDecimal('1.5E-3')).toEqual({ units: 15n, scale: 4 });
    expect(parseDecimal('-12.50')).toEqual({ units: -1250n, scale: 2 });
    expect(parseDecimal('.')).toBeNull();
    expect(parseDecimal('n/a')).toBeNull();
  });
});

describe('sumDecimals', () => {
  it.each([
    [['0.10', '0.20'], '0.30'],
    [['2.50', '3.00', '0.0001'], '5.5001'],
    [['9007199254740.99', '0.01'], '9007199254741.00'],
    [['1.5E-3', '-0.0015'], '0.0000'],
    [['-3.25', '1'], '-2.25'],
    [[], '0'],
  ])('adds %j to %s without float error', (values, expected) => {
    expect(sumDecimals(values)).toBe(expected);
  });

  it('has no sum when a value is not a number', () => {
    expect(sumDecimals(['1.00', 'n/a'])).toBeNull();
  });
});

describe('compareDecimals', () => {
  it('orders by value across scales, beyond float precision', () => {
    expect(['3.65', '120.450', '-1', '120.45'].sort(compareDecimals)).toEqual(['-1', '3.65', '120.450', '120.45']);
    expect(compareDecimals('9007199254740993', '9007199254740992')).toBe(1);
  });
});

/**
 * Exact arithmetic on money as the API sends it (decimal strings): sums made in the browser use
 * integer units at a common scale, never JS floats, so cents are not lost or invented.
 */

export interface Decimal {
  units: bigint;
  scale: number;
}

/** Exact decimal text (as the API sends money, exponents included) or null. */
export function parseDecimal(text: string): Decimal | null {
  const found = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text.trim());
  if (!found) return null;
  const [, sign, whole = '', fraction = '', exponent = '0'] = found;
  if (whole === '' && fraction === '') return null;
  let units = BigInt(whole + fraction);
  let scale = fraction.length - Number(exponent);
  if (scale < 0) {
    units *= 10n ** BigInt(-scale);
    scale = 0;
  }
  return { units: sign === '-' ? -units : units, scale };
}

/** The value's units at a scale at least its own. */
export function atScale(value: Decimal, scale: number): bigint {
  return value.units * 10n ** BigInt(scale - value.scale);
}

function toText({ units, scale }: Decimal): string {
  const digits = (units < 0n ? -units : units).toString().padStart(scale + 1, '0');
  const sign = units < 0n ? '-' : '';
  if (scale === 0) return `${sign}${digits}`;
  return `${sign}${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
}

/** The exact sum of decimal strings, at the largest scale among them; null if one is not a number. */
export function sumDecimals(values: string[]): string | null {
  const parsed = values.map(parseDecimal);
  if (parsed.some((value) => value === null)) return null;
  const decimals = parsed as Decimal[];
  const scale = Math.max(0, ...decimals.map((value) => value.scale));
  return toText({ units: decimals.reduce((sum, value) => sum + atScale(value, scale), 0n), scale });
}

/** Orders decimal strings by value (for sorting); text that is not a number sorts as zero. */
export function compareDecimals(a: string, b: string): number {
  const [x, y] = [parseDecimal(a) ?? { units: 0n, scale: 0 }, parseDecimal(b) ?? { units: 0n, scale: 0 }];
  const scale = Math.max(x.scale, y.scale);
  const difference = atScale(x, scale) - atScale(y, scale);
  return difference === 0n ? 0 : difference < 0n ? -1 : 1;
}

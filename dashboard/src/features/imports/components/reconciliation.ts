/**
 * The import's reconciliation (sums per currency and cost basis: in the file, stored, …) as rows.
 *
 * Accepts a list of `{currency, basis, …sums}` or a map `{currency: {basis: {…sums}}}`; every other
 * scalar field of a row becomes a column, so a new kind of sum shows without a code change.
 */

import { atScale, parseDecimal } from '@/lib/decimal';

export interface ReconciliationRow {
  currency: string;
  basis: string;
  values: Record<string, string>;
}

type Scalar = string | number | boolean | null;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isScalar(value: unknown): value is Scalar {
  return value === null || ['string', 'number', 'boolean'].includes(typeof value);
}

function shown(value: Scalar): string {
  if (value === null) return '—';
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  return String(value);
}

const CURRENCY_KEYS = ['currency', 'billing_currency'];
const BASIS_KEYS = ['basis', 'cost_basis', 'column'];

function fromRecord(item: Record<string, unknown>, currency = '', basis = ''): ReconciliationRow {
  const row: ReconciliationRow = { currency, basis, values: {} };
  for (const [key, value] of Object.entries(item)) {
    if (CURRENCY_KEYS.includes(key) && typeof value === 'string') row.currency = value;
    else if (BASIS_KEYS.includes(key) && typeof value === 'string') row.basis = value;
    else if (isScalar(value)) row.values[key] = shown(value);
  }
  return row;
}

export function reconciliationRows(reconciliation: unknown): ReconciliationRow[] {
  if (Array.isArray(reconciliation)) {
    return reconciliation.filter(isRecord).map((item) => fromRecord(item));
  }
  if (!isRecord(reconciliation)) return [];
  const rows: ReconciliationRow[] = [];
  for (const [currency, byBasis] of Object.entries(reconciliation)) {
    if (Array.isArray(byBasis)) {
      rows.push(...byBasis.filter(isRecord).map((item) => fromRecord(item, currency)));
    } else if (isRecord(byBasis)) {
      for (const [basis, sums] of Object.entries(byBasis)) {
        if (isRecord(sums)) rows.push(fromRecord(sums, currency, basis));
        else if (isScalar(sums)) rows.push({ currency, basis, values: { amount: shown(sums) } });
      }
    }
  }
  return rows;
}

/**
 * Whether the file's sum equals the stored plus the rejected one, exactly; undefined when the row
 * does not carry those three sums.
 */
export function addsUp(values: Record<string, string>): boolean | undefined {
  const [file, stored, rejected] = [values.file, values.stored, values.rejected].map((v) =>
    v === undefined ? null : parseDecimal(v),
  );
  if (!file || !stored || !rejected) return undefined;
  const scale = Math.max(file.scale, stored.scale, rejected.scale);
  return atScale(file, scale) === atScale(stored, scale) + atScale(rejected, scale);
}

/** `file_sum` → "File sum". */
export function columnTitle(key: string): string {
  const words = key.replace(/_/g, ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

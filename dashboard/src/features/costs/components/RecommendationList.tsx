import { Link } from 'react-router';
import { compareDecimals, sumDecimals } from '@/lib/decimal';
import { formatMoney } from '@/lib/format';
import type { Recommendation } from '../types';

const RULE_LABELS: Record<string, string> = {
  idle_compute: 'Idle compute',
  rightsize: 'Rightsize',
  stopped_instance: 'Stopped instance',
  unattached_volume: 'Unattached volume',
  unused_ip: 'Unused IP address',
  old_snapshot: 'Old snapshot',
  unmanaged_spend: 'Unmanaged spend',
  commitment_coverage: 'Commitment coverage',
  zero_usage: 'Zero usage',
};

export function ruleLabel(rule: string): string {
  return RULE_LABELS[rule] ?? rule.replace(/_/g, ' ');
}

function evidenceText(evidence: Record<string, unknown>): string {
  return Object.entries(evidence)
    .filter(([, value]) => value !== null && value !== undefined)
    .map(([key, value]) => `${key.replace(/_/g, ' ')}: ${typeof value === 'object' ? JSON.stringify(value) : String(value)}`)
    .join('; ');
}

/** The resource a recommendation is about: a link to it in the inventory, or its billing id alone. */
function RecommendedResource({ item }: { item: Recommendation }) {
  return (
    <>
      {item.resource_id === null ? (
        item.name
      ) : (
        <Link to={`/resources?selected=${encodeURIComponent(item.resource_id)}`}>{item.name}</Link>
      )}
      <div className="muted small">
        {item.external_id}
        {item.resource_id === null && ' · not in the inventory'}
      </div>
    </>
  );
}

export interface RecommendationListProps {
  items: Recommendation[];
  totals: Record<string, string>;
}

/**
 * Count and saving per rule and currency, largest saving first. The API totals only per currency,
 * so a rule's saving is added up here, exactly (integer minor units, see lib/decimal).
 */
export function savingsByRule(items: Recommendation[]): { rule: string; currency: string; count: number; saving: string | null }[] {
  const byRule = new Map<string, { rule: string; currency: string; savings: string[] }>();
  for (const item of items) {
    const key = `${item.rule}\u0000${item.currency}`;
    const entry = byRule.get(key) ?? { rule: item.rule, currency: item.currency, savings: [] };
    entry.savings.push(item.monthly_savings);
    byRule.set(key, entry);
  }
  return [...byRule.values()]
    .map(({ rule, currency, savings }) => ({ rule, currency, count: savings.length, saving: sumDecimals(savings) }))
    .sort((a, b) => compareDecimals(b.saving ?? '0', a.saving ?? '0'));
}

/** Savings recommendations, largest monthly saving first, with the API's total on top. */
export function RecommendationList({ items, totals }: RecommendationListProps) {
  const sorted = [...items].sort((a, b) => compareDecimals(b.monthly_savings, a.monthly_savings));
  const rules = savingsByRule(items);
  return (
    <div data-testid="recommendations" className="recommendations">
      <p className="savings-total" data-testid="savings-total">
        Potential savings:{' '}
        <strong>
          {Object.entries(totals).length === 0
            ? formatMoney(0)
            : Object.entries(totals)
                .map(([currency, value]) => `${formatMoney(value, currency)}/month`)
                .join(' · ')}
        </strong>{' '}
        from {items.length} {items.length === 1 ? 'recommendation' : 'recommendations'}
      </p>
      {rules.length > 1 && (
        <ul className="rule-summary" aria-label="Savings by rule">
          {rules.map((entry) => (
            <li key={`${entry.rule}-${entry.currency}`}>
              {ruleLabel(entry.rule)}: {entry.count} · {formatMoney(entry.saving, entry.currency)}/month
            </li>
          ))}
        </ul>
      )}
      {sorted.length > 0 && (
        <div className="table-wrap">
          <table className="table" aria-label="Recommendations">
            <thead>
              <tr>
                <th scope="col">Rule</th>
                <th scope="col">Resource</th>
                <th scope="col">Evidence</th>
                <th scope="col" className="num">
                  Monthly saving
                </th>
              </tr>
            </thead>
            <tbody>
              {sorted.map((item) => (
                <tr key={`${item.rule}-${item.external_id}`}>
                  <td>{ruleLabel(item.rule)}</td>
                  <td>
                    <RecommendedResource item={item} />
                  </td>
                  <td className="evidence">{evidenceText(item.evidence)}</td>
                  <td className="num">{formatMoney(item.monthly_savings, item.currency)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}

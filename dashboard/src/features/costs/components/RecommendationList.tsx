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
    .map(([key, value]) => `${key.replace(/_/g, ' ')}: ${typeof value === 'object' ? JSON.stringify(value) : String(value)}`)
    .join('; ');
}

export interface RecommendationListProps {
  items: Recommendation[];
  totals: Record<string, string>;
}

/** Savings recommendations, largest monthly saving first, with the total on top. */
export function RecommendationList({ items, totals }: RecommendationListProps) {
  const sorted = [...items].sort((a, b) => Number(b.monthly_savings) - Number(a.monthly_savings));
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
                <tr key={`${item.rule}-${item.resource_id}-${item.external_id}`}>
                  <td>{ruleLabel(item.rule)}</td>
                  <td>
                    {item.name}
                    <div className="muted small">{item.external_id}</div>
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

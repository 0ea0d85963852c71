import { CostBreakdownExplorer, InvoiceTable } from '@/features/costs';
import { usePageTitle } from './usePageTitle';

export function CostsPage() {
  usePageTitle('Costs');
  return (
    <>
      <h1>Costs</h1>
      <CostBreakdownExplorer />
      <InvoiceTable />
    </>
  );
}

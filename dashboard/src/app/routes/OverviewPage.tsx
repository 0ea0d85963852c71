import { AlertFeed } from '@/features/alerts';
import { CostSummary, DailyCostChart } from '@/features/costs';
import { usePageTitle } from './usePageTitle';

export function OverviewPage() {
  usePageTitle('Overview');
  return (
    <>
      <h1>Overview</h1>
      <div className="overview-grid">
        <CostSummary />
        <DailyCostChart />
        <AlertFeed />
      </div>
    </>
  );
}

export { BudgetList, BudgetProgress } from './components/BudgetList';
export { CostBreakdownExplorer } from './components/CostBreakdownExplorer';
export { CostSummary } from './components/CostSummary';
export { DailyCostChart } from './components/DailyCostChart';
export { InvoiceTable } from './components/InvoiceTable';
export { RecommendationList } from './components/RecommendationList';
export { SavingsFinder } from './components/SavingsFinder';
export { fetchDaily } from './api/costs';
export type { DailyCostItem } from './types';

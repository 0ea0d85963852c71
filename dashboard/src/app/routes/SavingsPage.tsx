import { SavingsFinder } from '@/features/costs';
import { usePageTitle } from './usePageTitle';

export function SavingsPage() {
  usePageTitle('Savings');
  return (
    <>
      <h1>Savings</h1>
      <SavingsFinder />
    </>
  );
}

import { ResourceExplorer } from '@/features/resources';
import { usePageTitle } from './usePageTitle';

export function ResourcesPage() {
  usePageTitle('Resources');
  return (
    <>
      <h1>Resources</h1>
      <ResourceExplorer />
    </>
  );
}

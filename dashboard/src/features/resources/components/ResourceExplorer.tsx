import { EmptyState, ErrorMessage, Loading } from '@/components';
import { useResourceFilters } from '../hooks/useResourceFilters';
import { useResourcePages } from '../hooks/useResourcePages';
import { ResourceDetailPanel } from './ResourceDetailPanel';
import { ResourceFilterBar } from './ResourceFilterBar';
import { ResourceList } from './ResourceList';

/** Filters, the virtualised resource list and the selected resource's details. */
export function ResourceExplorer() {
  const { filters, setFilters, selectedId, select } = useResourceFilters();
  const pages = useResourcePages(filters);

  return (
    <div className={`resources-layout ${selectedId ? 'has-detail' : ''}`}>
      <section className="card" aria-labelledby="resources-heading">
        <h2 id="resources-heading">Inventory</h2>
        <ResourceFilterBar filters={filters} onChange={setFilters} />
        {pages.isPending && <Loading label="Loading resources…" />}
        {pages.isError && <ErrorMessage error={pages.error} context="Could not load resources" />}
        {pages.data && pages.total === 0 && (
          <EmptyState title="No resources match these filters">Change or clear the filters to see more.</EmptyState>
        )}
        {pages.data && pages.total > 0 && (
          <ResourceList
            resources={pages.resources}
            total={pages.total}
            hasMore={pages.hasNextPage}
            loadingMore={pages.isFetchingNextPage}
            onLoadMore={() => void pages.fetchNextPage()}
            selectedId={selectedId}
            onSelect={select}
          />
        )}
      </section>
      {selectedId && <ResourceDetailPanel resourceId={selectedId} onClose={() => select(null)} />}
    </div>
  );
}

import { useInfiniteQuery } from '@tanstack/react-query';
import { fetchResourcePage, PAGE_SIZE } from '../api/resources';
import type { ResourceFilters } from '../types';

/** Pages of 100 resources, fetched as the list scrolls. */
export function useResourcePages(filters: ResourceFilters) {
  const query = useInfiniteQuery({
    queryKey: ['resources', 'list', filters],
    queryFn: ({ pageParam, signal }) => fetchResourcePage(filters, pageParam, signal),
    initialPageParam: 0,
    getNextPageParam: (last) => (last.offset + PAGE_SIZE < last.total ? last.offset + PAGE_SIZE : undefined),
  });
  const resources = query.data?.pages.flatMap((page) => page.items) ?? [];
  const total = query.data?.pages[0]?.total ?? 0;
  return { ...query, resources, total };
}

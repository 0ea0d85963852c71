import { useVirtualizer } from '@tanstack/react-virtual';
import { useEffect, useRef, type KeyboardEvent } from 'react';
import { StatusBadge } from '@/components';
import { formatMoney } from '@/lib/format';
import type { Resource } from '../types';

export const ROW_HEIGHT = 44;

export interface ResourceListProps {
  resources: Resource[];
  total: number;
  hasMore: boolean;
  loadingMore: boolean;
  onLoadMore: () => void;
  selectedId: string | null;
  onSelect: (id: string) => void;
}

/** Virtualised rows: only the visible ones are in the page, so 10,000 scroll smoothly. */
export function ResourceList({ resources, total, hasMore, loadingMore, onLoadMore, selectedId, onSelect }: ResourceListProps) {
  const scrollRef = useRef<HTMLDivElement>(null);
  const count = resources.length + (hasMore ? 1 : 0);
  const virtualizer = useVirtualizer({
    count,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 10,
  });
  const items = virtualizer.getVirtualItems();
  const last = items[items.length - 1];

  useEffect(() => {
    if (last && last.index >= resources.length - 1 && hasMore && !loadingMore) onLoadMore();
  }, [last, resources.length, hasMore, loadingMore, onLoadMore]);

  const bodyRef = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (bodyRef.current) bodyRef.current.style.height = `${virtualizer.getTotalSize()}px`;
  });

  function onKeyDown(event: KeyboardEvent<HTMLButtonElement>, index: number) {
    const step = event.key === 'ArrowDown' ? 1 : event.key === 'ArrowUp' ? -1 : 0;
    if (step === 0) return;
    event.preventDefault();
    const target = Math.min(Math.max(index + step, 0), resources.length - 1);
    virtualizer.scrollToIndex(target);
    requestAnimationFrame(() => {
      scrollRef.current?.querySelector<HTMLButtonElement>(`[data-index="${target}"] button`)?.focus();
    });
  }

  return (
    <div className="resource-list" data-testid="resources-list">
      <p className="muted" aria-live="polite">
        {total.toLocaleString('en-US')} {total === 1 ? 'resource' : 'resources'}
      </p>
      <div role="table" aria-label="Resources" aria-rowcount={total + 1} className="vtable">
        <div role="rowgroup" className="vtable__head">
          <div role="row" aria-rowindex={1} className="vtable__row">
            <span role="columnheader" className="col-name">Name</span>
            <span role="columnheader" className="col-status">Status</span>
            <span role="columnheader" className="col-type">Type</span>
            <span role="columnheader" className="col-provider">Provider / region</span>
            <span role="columnheader" className="col-team">Team</span>
            <span role="columnheader" className="col-cost num">Cost / hour</span>
          </div>
        </div>
        <div ref={scrollRef} className="vtable__scroll" role="rowgroup">
          <div ref={bodyRef} className="vtable__body">
            {items.map((item) => {
              const resource = resources[item.index];
              return (
                <div
                  key={item.key}
                  role="row"
                  aria-rowindex={item.index + 2}
                  data-index={item.index}
                  className={`vtable__row vtable__row--body ${resource && resource.id === selectedId ? 'is-selected' : ''}`}
                  ref={(element) => {
                    if (element) element.style.transform = `translateY(${item.start}px)`;
                  }}
                >
                  {resource ? (
                    <>
                      <span role="cell" className="col-name">
                        <button
                          type="button"
                          className="link-button"
                          aria-pressed={resource.id === selectedId}
                          onClick={() => onSelect(resource.id)}
                          onKeyDown={(event) => onKeyDown(event, item.index)}
                        >
                          {resource.name}
                        </button>
                      </span>
                      <span role="cell" className="col-status">
                        <StatusBadge status={resource.status} />
                      </span>
                      <span role="cell" className="col-type">{resource.type}</span>
                      <span role="cell" className="col-provider">
                        {resource.provider} · {resource.region}
                      </span>
                      <span role="cell" className="col-team">{resource.team ?? '—'}</span>
                      <span role="cell" className="col-cost num">
                        {formatMoney(resource.hourly_cost, resource.currency)}
                      </span>
                    </>
                  ) : (
                    <span role="cell" className="muted">
                      Loading more…
                    </span>
                  )}
                </div>
              );
            })}
          </div>
        </div>
      </div>
    </div>
  );
}

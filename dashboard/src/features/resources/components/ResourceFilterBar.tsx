import { useEffect, useState, type FormEvent } from 'react';
import { Field } from '@/components';
import { PROVIDERS, RESOURCE_STATUSES, RESOURCE_TYPES, SORT_CHOICES, type ResourceFilters } from '../types';

export interface ResourceFilterBarProps {
  filters: ResourceFilters;
  onChange: (patch: ResourceFilters) => void;
}

interface TextFilters {
  q: string;
  region: string;
  team: string;
  tag: string;
}

function textOf(filters: ResourceFilters): TextFilters {
  return { q: filters.q ?? '', region: filters.region ?? '', team: filters.team ?? '', tag: filters.tag ?? '' };
}

/** Server-side filters: choices apply at once, typed text on Enter or "Apply". */
export function ResourceFilterBar({ filters, onChange }: ResourceFilterBarProps) {
  const [text, setText] = useState<TextFilters>(() => textOf(filters));
  useEffect(() => setText(textOf(filters)), [filters]);

  function onSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    onChange(text);
  }

  const select = (name: 'status' | 'type' | 'provider', label: string, options: readonly string[]) => (
    <Field label={label}>
      {(id) => (
        <select id={id} value={filters[name] ?? ''} onChange={(event) => onChange({ [name]: event.target.value })}>
          <option value="">Any</option>
          {options.map((option) => (
            <option key={option} value={option}>
              {option}
            </option>
          ))}
        </select>
      )}
    </Field>
  );

  const input = (name: keyof TextFilters, label: string, placeholder: string) => (
    <Field label={label}>
      {(id) => (
        <input
          id={id}
          type={name === 'q' ? 'search' : 'text'}
          value={text[name]}
          placeholder={placeholder}
          onChange={(event) => setText({ ...text, [name]: event.target.value })}
        />
      )}
    </Field>
  );

  const active = Object.entries(filters).some(([name, value]) => name !== 'sort' && Boolean(value));
  return (
    <form className="toolbar" role="search" aria-label="Filter resources" onSubmit={onSubmit}>
      {input('q', 'Search', 'name or id')}
      {select('status', 'Status', RESOURCE_STATUSES)}
      {select('type', 'Type', RESOURCE_TYPES)}
      {select('provider', 'Provider', PROVIDERS)}
      {input('region', 'Region', 'e.g. us-east-1')}
      {input('team', 'Team', 'e.g. payments')}
      {input('tag', 'Tag', 'key or key:value')}
      <Field label="Sort by">
        {(id) => (
          <select
            id={id}
            value={filters.sort ?? 'name'}
            onChange={(event) => onChange({ sort: event.target.value === 'name' ? '' : event.target.value })}
          >
            {SORT_CHOICES.map((choice) => (
              <option key={choice.value} value={choice.value}>
                {choice.label}
              </option>
            ))}
          </select>
        )}
      </Field>
      <div className="toolbar__actions">
        <button type="submit" className="button button--primary">
          Apply
        </button>
        {active && (
          <button
            type="button"
            className="button"
            onClick={() => onChange({ q: '', status: '', type: '', provider: '', region: '', team: '', tag: '' })}
          >
            Clear filters
          </button>
        )}
      </div>
    </form>
  );
}

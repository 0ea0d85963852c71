export const RESOURCE_STATUSES = ['pending', 'running', 'stopped', 'idle', 'error', 'terminated'] as const;
export const RESOURCE_TYPES = ['compute', 'storage', 'database', 'network', 'container', 'serverless', 'other'] as const;
export const PROVIDERS = ['aws', 'azure', 'gcp', 'oci', 'other'] as const;

export interface Resource {
  id: string;
  external_id: string;
  name: string;
  provider: string;
  type: string;
  region: string;
  account: string;
  status: string;
  hourly_cost: string;
  currency: string;
  tags: Record<string, string>;
  owner: string | null;
  team: string | null;
  cpu_utilization: string | null;
  memory_utilization: string | null;
  created_at: string;
  updated_at: string;
}

/** The server-side filters of GET /api/resources, as kept in the page URL. */
export interface ResourceFilters {
  status?: string;
  type?: string;
  provider?: string;
  region?: string;
  team?: string;
  tag?: string;
  q?: string;
  /** A field of the API's sort list, '-' first for descending. */
  sort?: string;
}

export const FILTER_KEYS: (keyof ResourceFilters)[] = ['status', 'type', 'provider', 'region', 'team', 'tag', 'q', 'sort'];

export const SORT_CHOICES: { value: string; label: string }[] = [
  { value: 'name', label: 'Name (A–Z)' },
  { value: '-hourly_cost', label: 'Cost per hour (highest first)' },
  { value: 'hourly_cost', label: 'Cost per hour (lowest first)' },
  { value: 'status', label: 'Status' },
  { value: '-updated_at', label: 'Recently updated' },
];

export interface UtilizationSample {
  timestamp: string;
  cpu_percent: number | string;
  memory_percent: number | string;
  network_bytes: number | null;
}

export interface ResourceAlert {
  id: string;
  severity: string;
  status: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  starts_at: string;
}

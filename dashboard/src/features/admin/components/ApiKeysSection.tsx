import { useState } from 'react';

import { EmptyState, ErrorMessage, Loading } from '@/components';

import { useApiKeys, useReloadApiKeys } from '../hooks/useAdminLists';
import type { CreatedApiKey } from '../types';
import { ApiKeyTable } from './ApiKeyTable';
import { CreateApiKeyForm } from './CreateApiKeyForm';
import { NewApiKeyNotice } from './NewApiKeyNotice';

const PAGE_SIZE = 50;

/** API keys: create (the secret is shown once), list page by page, revoke. */
export function ApiKeysSection() {
  const [offset, setOffset] = useState(0);
  const { data: page, isFetching, error } = useApiKeys(PAGE_SIZE, offset);
  const reload = useReloadApiKeys();
  const [created, setCreated] = useState<CreatedApiKey | null>(null);

  return (
    <section className="card admin-section" aria-labelledby="admin-keys-title">
      <h2 id="admin-keys-title">API keys</h2>
      {created ? (
        <NewApiKeyNotice apiKey={created} onDone={() => setCreated(null)} />
      ) : (
        <CreateApiKeyForm
          onCreated={(key) => {
            setCreated(key);
            reload();
          }}
        />
      )}
      {error !== null && <ErrorMessage error={error} context="Could not load the API keys" />}
      {page === undefined ? (
        isFetching && <Loading label="Loading API keys…" />
      ) : page.keys.length === 0 ? (
        <EmptyState title="No API keys yet">Create one above for a script or a service.</EmptyState>
      ) : (
        <>
          <ApiKeyTable keys={page.keys} onRevoked={reload} />
          {page.total > PAGE_SIZE && (
            <nav aria-label="API key pages" className="admin-pager">
              <button
                className="button"
                type="button"
                disabled={offset === 0}
                onClick={() => setOffset(Math.max(0, offset - PAGE_SIZE))}
              >
                Previous keys
              </button>
              <span>
                {offset + 1}–{Math.min(offset + PAGE_SIZE, page.total)} of {page.total}
              </span>
              <button
                className="button"
                type="button"
                disabled={offset + PAGE_SIZE >= page.total}
                onClick={() => setOffset(offset + PAGE_SIZE)}
              >
                Next keys
              </button>
            </nav>
          )}
        </>
      )}
    </section>
  );
}

import { useEffect, useId, useRef, useState } from 'react';

import type { CreatedApiKey } from '../types';

export interface NewApiKeyNoticeProps {
  apiKey: CreatedApiKey;
  onDone: () => void;
}

/** The new key's secret, shown this once, with a copy button. */
export function NewApiKeyNotice({ apiKey, onDone }: NewApiKeyNoticeProps) {
  const id = useId();
  const [copied, setCopied] = useState<'no' | 'yes' | 'failed'>('no');
  const secret = useRef<HTMLInputElement>(null);

  useEffect(() => {
    secret.current?.focus();
    secret.current?.select();
  }, []);

  async function copy(): Promise<void> {
    try {
      await navigator.clipboard.writeText(apiKey.key);
      setCopied('yes');
    } catch {
      setCopied('failed');
    }
  }

  return (
    <section className="admin-new-key" aria-labelledby={`${id}-title`}>
      <h3 id={`${id}-title`}>API key “{apiKey.name}” created</h3>
      <p className="admin-new-key__warning">
        <strong>Copy this key now. It will not be shown again</strong>: only its hash is stored.
      </p>
      <label htmlFor={`${id}-secret`}>API key</label>
      <input
        id={`${id}-secret`}
        ref={secret}
        readOnly
        value={apiKey.key}
        className="admin-new-key__secret"
        spellCheck={false}
        autoComplete="off"
      />
      <button className="button" type="button" onClick={() => void copy()}>
        Copy key
      </button>
      <p role="status">
        {copied === 'yes' && 'Copied to the clipboard.'}
        {copied === 'failed' && 'Could not copy; select the key and copy it by hand.'}
      </p>
      <button className="button" type="button" onClick={onDone}>
        I have stored the key
      </button>
    </section>
  );
}

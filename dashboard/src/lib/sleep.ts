/** A pause that ends early when its signal aborts: retry and poll loops stop as soon as they are cancelled. */

/** Resolves after `ms`, or as soon as `signal` aborts; never rejects, so callers check `signal.aborted`. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}

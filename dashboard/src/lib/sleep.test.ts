import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { sleep } from './sleep';

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

function settled(promise: Promise<void>): () => boolean {
  let done = false;
  void promise.then(() => {
    done = true;
  });
  return () => done;
}

describe('sleep', () => {
  it('resolves once the time has passed, not before', async () => {
    const done = settled(sleep(1_000, new AbortController().signal));

    await vi.advanceTimersByTimeAsync(999);
    expect(done()).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(done()).toBe(true);
  });

  it('resolves as soon as its signal aborts and leaves no timer behind', async () => {
    const controller = new AbortController();
    const done = settled(sleep(60_000, controller.signal));

    controller.abort();
    await vi.advanceTimersByTimeAsync(0);

    expect(done()).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });
});

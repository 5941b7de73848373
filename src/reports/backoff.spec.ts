import { describe, expect, it } from 'vitest';
import { backoffDelay, nextRetry, parseRetryAfter } from './backoff.js';

describe('backoff', () => {
  const policy = (r: number) => ({ baseMs: 1000, maxMs: 60_000, random: () => r });

  it('doubles per attempt up to the cap, with half of each delay random', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((a) => backoffDelay(a, policy(1)))).toEqual([1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]);
    expect([1, 2, 3, 7].map((a) => backoffDelay(a, policy(0)))).toEqual([500, 1000, 2000, 30000]);
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(4, { baseMs: 1000, maxMs: 60_000 });
      expect(d).toBeGreaterThanOrEqual(4000);
      expect(d).toBeLessThanOrEqual(8000);
    }
  });

  it('spreads retries of jobs that failed together', () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(5, { baseMs: 1000, maxMs: 60_000 })));
    expect(delays.size).toBeGreaterThan(40);
  });

  it('survives absurd attempt counts', () => {
    expect(backoffDelay(10_000, policy(1))).toBe(60_000);
    expect(backoffDelay(0, policy(1))).toBe(1000);
  });

  it('retries until the window ends, makes a last attempt at its end, then gives up', () => {
    const now = 1_000_000;
    expect(nextRetry(1, now, now + 3600_000, policy(1))).toEqual({ retryAt: now + 1000 });
    expect(nextRetry(8, now, now + 10_000, policy(1))).toEqual({ retryAt: now + 10_000 });
    expect(nextRetry(9, now + 10_000, now + 10_000, policy(1))).toEqual({ giveUp: true });
  });

  it("honours a server's Retry-After, up to the cap", () => {
    const now = 0;
    expect(nextRetry(1, now, 1e9, policy(1), 30_000)).toEqual({ retryAt: 30_000 });
    expect(nextRetry(1, now, 1e9, policy(1), 10 * 3600_000)).toEqual({ retryAt: 60_000 });
    expect(parseRetryAfter('120')).toBe(120_000);
    expect(parseRetryAfter(new Date(Date.UTC(2030, 0, 1, 0, 1)).toUTCString(), Date.UTC(2030, 0, 1))).toBe(60_000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });
});

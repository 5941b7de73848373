/**
 * Retry timing for report jobs: exponential backoff with jitter, bounded by a give-up time.
 *
 * The delay doubles per attempt up to `maxMs`; half of it is fixed and half random ("equal jitter"), so
 * retries from many jobs that failed together (a PACS restart) spread out but never come back sooner than
 * half the nominal delay. The last attempt is placed at the give-up time itself rather than skipped, so a
 * window always ends with a try.
 */
export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
  random?: () => number;
}

export function backoffDelay(attempt: number, p: BackoffPolicy): number {
  const exp = Math.min(p.maxMs, p.baseMs * 2 ** Math.min(Math.max(attempt, 1) - 1, 40));
  const r = (p.random ?? Math.random)();
  return Math.round(exp / 2 + (r * exp) / 2);
}

export type RetryDecision = { retryAt: number } | { giveUp: true };

/**
 * After failed attempt number `attempt` (1-based) at `now`: when to try again, or give up because the
 * window ending at `giveUpAt` is spent. `retryAfterMs` (a server's Retry-After) is honoured up to `maxMs`.
 */
export function nextRetry(attempt: number, now: number, giveUpAt: number, p: BackoffPolicy, retryAfterMs?: number): RetryDecision {
  if (now >= giveUpAt) return { giveUp: true };
  const delay = Math.max(backoffDelay(attempt, p), Math.min(retryAfterMs ?? 0, p.maxMs));
  return { retryAt: Math.min(now + delay, giveUpAt) };
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

import { describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { readWebhookHeaders, secretKey, sign, verify, WebhookSignatureError, type WebhookHeaders } from './signature.js';

const SECRET = `whsec_${Buffer.from('0123456789abcdef0123456789abcdef').toString('base64')}`;
const OTHER = `whsec_${Buffer.from('another-secret-of-32-bytes-long!').toString('base64')}`;
const body = Buffer.from(JSON.stringify({ id: 'whe_' + 'a'.repeat(32), type: 'study.access_requested', data: {} }));
const now = 1_800_000_000;

/** One payload signed by the Standard Webhooks reference library; each case changes one thing. */
function signed(over: Partial<WebhookHeaders> = {}): WebhookHeaders {
  const id = 'msg_1';
  return { id, timestamp: String(now), signature: new Webhook(SECRET).sign(id, new Date(now * 1000), body.toString()), ...over };
}
function reason(fn: () => void): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return err instanceof WebhookSignatureError ? err.reason : 'other';
  }
}

describe('webhook signature', () => {
  const keys = [secretKey(SECRET)];
  it('accepts what the reference implementation signs', () => {
    expect(reason(() => verify(keys, signed(), body, now))).toBeUndefined();
  });
  it('signs exactly as the reference implementation does', () => {
    expect(sign(SECRET, 'msg_1', now, body)).toBe(signed().signature);
  });
  it('accepts any configured secret (rotation) and any listed signature', () => {
    const both = [secretKey(OTHER), secretKey(SECRET)];
    expect(reason(() => verify(both, signed(), body, now))).toBeUndefined();
    const list = `v1,${Buffer.alloc(32).toString('base64')} ${signed().signature}`;
    expect(reason(() => verify(keys, signed({ signature: list }), body, now))).toBeUndefined();
  });
  it('refuses a changed body', () => {
    const changed = Buffer.from(body.toString().replace('study', 'stuDy'));
    expect(reason(() => verify(keys, signed(), changed, now))).toBe('bad_signature');
  });
  it('refuses a changed id', () => {
    expect(reason(() => verify(keys, signed({ id: 'msg_2' }), body, now))).toBe('bad_signature');
  });
  it('refuses a changed timestamp', () => {
    expect(reason(() => verify(keys, signed({ timestamp: String(now + 1) }), body, now))).toBe('bad_signature');
  });
  it('refuses another secret', () => {
    expect(reason(() => verify([secretKey(OTHER)], signed(), body, now))).toBe('bad_signature');
  });
  it('refuses a stale or future timestamp', () => {
    expect(reason(() => verify(keys, signed(), body, now + 301))).toBe('stale_timestamp');
    expect(reason(() => verify(keys, signed(), body, now - 301))).toBe('stale_timestamp');
    expect(reason(() => verify(keys, signed(), body, now + 299))).toBeUndefined();
  });
  it('refuses a malformed timestamp', () => {
    expect(reason(() => verify(keys, signed({ timestamp: '1.5e9' }), body, now))).toBe('bad_timestamp');
  });
  it('refuses a signature of another version or shape', () => {
    expect(reason(() => verify(keys, signed({ signature: signed().signature.replace('v1,', 'v2,') }), body, now))).toBe('bad_signature');
    expect(reason(() => verify(keys, signed({ signature: 'garbage' }), body, now))).toBe('bad_signature');
  });
  it('needs all three headers', () => {
    const h: Record<string, string> = { 'webhook-id': 'a', 'webhook-timestamp': '1' };
    expect(reason(() => readWebhookHeaders((n) => h[n]))).toBe('missing_headers');
  });
});

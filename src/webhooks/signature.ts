import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Standard Webhooks signature check (the scheme Avara's SDK `unwrap` applies): HMAC-SHA256 over
 * `${webhook-id}.${webhook-timestamp}.${raw body}` keyed with the base64 part of a `whsec_` secret,
 * sent as a space-separated list of `v1,<base64>` in `webhook-signature`. Any configured secret may
 * match (rotation). The timestamp must be within five minutes of our clock, as in the SDK.
 */

export const TIMESTAMP_TOLERANCE_SECONDS = 5 * 60;

export type SignatureFailure = 'missing_headers' | 'bad_timestamp' | 'stale_timestamp' | 'bad_signature';

export class WebhookSignatureError extends Error {
  constructor(
    readonly reason: SignatureFailure,
    message: string,
  ) {
    super(message);
    this.name = 'WebhookSignatureError';
  }
}

export interface WebhookHeaders {
  id: string;
  timestamp: string;
  signature: string;
}

export function secretKey(secret: string): Buffer {
  return Buffer.from(secret.startsWith('whsec_') ? secret.slice(6) : secret, 'base64');
}

export function sign(secret: string, id: string, timestampSeconds: number, body: string | Buffer): string {
  const mac = createHmac('sha256', secretKey(secret));
  mac.update(`${id}.${timestampSeconds}.`);
  mac.update(body);
  return `v1,${mac.digest('base64')}`;
}

export function readWebhookHeaders(get: (name: string) => string | undefined): WebhookHeaders {
  const id = get('webhook-id');
  const timestamp = get('webhook-timestamp');
  const signature = get('webhook-signature');
  if (!id || !timestamp || !signature) {
    throw new WebhookSignatureError('missing_headers', 'webhook-id, webhook-timestamp and webhook-signature headers are required');
  }
  return { id, timestamp, signature };
}

export function verify(keys: Buffer[], headers: WebhookHeaders, body: Buffer, nowSeconds = Date.now() / 1000): void {
  if (!/^\d{1,12}$/.test(headers.timestamp)) {
    throw new WebhookSignatureError('bad_timestamp', 'webhook-timestamp must be whole seconds since the epoch');
  }
  const ts = Number(headers.timestamp);
  if (Math.abs(nowSeconds - ts) > TIMESTAMP_TOLERANCE_SECONDS) {
    throw new WebhookSignatureError('stale_timestamp', 'webhook-timestamp is more than five minutes away from our clock');
  }
  const offered = headers.signature
    .split(' ')
    .filter((s) => s.startsWith('v1,'))
    .map((s) => Buffer.from(s.slice(3), 'base64'));
  for (const key of keys) {
    const mac = createHmac('sha256', key);
    mac.update(`${headers.id}.${headers.timestamp}.`);
    mac.update(body);
    const expected = mac.digest();
    if (offered.some((o) => o.length === expected.length && timingSafeEqual(o, expected))) return;
  }
  throw new WebhookSignatureError('bad_signature', 'no webhook-signature matches a configured secret');
}

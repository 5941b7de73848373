import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';

/**
 * One request to a host outside the hospital (the report's presigned URL, the critical-report receiver),
 * on node:http: no pooling across hosts (`agent: false`), a resolver hook that can refuse an address, an
 * idle timeout and an abort signal. node:http rather than the undici package keeps undici out of the
 * production image and ~20 MB off the gateway's resident memory.
 */
export interface OutboundInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  lookup?: LookupFunction;
  signal?: AbortSignal;
  /** No byte for this long fails the request (connect included). */
  idleTimeoutMs: number;
}

export class OutboundTimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(host: string) {
    super(`${host} did not answer in time`);
    this.name = 'OutboundTimeoutError';
  }
}

export function outboundRequest(url: URL, init: OutboundInit): Promise<IncomingMessage> {
  const mod = url.protocol === 'https:' ? https : http;
  const headers = { ...init.headers };
  if (init.body !== undefined) headers['content-length'] = String(Buffer.byteLength(init.body));
  return new Promise((resolve, reject) => {
    const req = mod.request(url, { method: init.method ?? 'GET', headers, agent: false, lookup: init.lookup, signal: init.signal, timeout: init.idleTimeoutMs });
    req.on('timeout', () => req.destroy(new OutboundTimeoutError(url.host)));
    req.on('error', reject);
    req.on('response', (res) => {
      res.on('error', () => {}); // surfaced to whoever reads the body
      resolve(res);
    });
    req.end(init.body);
  });
}

/** Reads and drops a (small) response body so the request completes. */
export async function discard(res: IncomingMessage): Promise<void> {
  try {
    for await (const _ of res) {
      // dropped
    }
  } catch {
    // the body is being thrown away
  }
}

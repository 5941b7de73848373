import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { PacsAuth } from '../config/env.js';
import { PacsError } from './pacs-client.js';

/**
 * The one way the gateway talks HTTP to an archive: a keep-alive pool, the configured credentials,
 * timeouts, and failures turned into PacsError. Built on node:http rather than fetch or the undici
 * package: fetch buffers streamed uploads (FIELD-NOTES), and node:http streams both ways with the
 * lowest memory (bench: the gateway's idle RSS is ~20 MB lower than with undici loaded).
 */
export interface PacsHttpOptions {
  auth: PacsAuth;
  timeoutMs: number;
  onRequest?: (info: { method: string; status?: number; ms: number; failed?: string }) => void;
}

/** The response body, a stream, with the few conveniences callers need. */
export type PacsBody = IncomingMessage & { text(): Promise<string>; dump(): Promise<void> };

export interface PacsResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: PacsBody;
}

export interface PacsRequestInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer | Readable;
  signal?: AbortSignal;
}

export class PacsHttp {
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private readonly authHeader?: string;

  constructor(private readonly opts: PacsHttpOptions) {
    this.httpAgent = new http.Agent({ keepAlive: true, maxSockets: 64, maxFreeSockets: 16, scheduling: 'lifo' });
    this.httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 64, maxFreeSockets: 16, scheduling: 'lifo' });
    if (opts.auth.kind === 'basic') {
      this.authHeader = `Basic ${Buffer.from(`${opts.auth.username}:${opts.auth.password}`).toString('base64')}`;
    } else if (opts.auth.kind === 'bearer') {
      this.authHeader = `Bearer ${opts.auth.token}`;
    }
  }

  async request(url: string, init: PacsRequestInit = {}): Promise<PacsResponse> {
    const method = init.method ?? 'GET';
    const started = performance.now();
    try {
      let res: IncomingMessage;
      try {
        res = await this.once(url, method, init);
      } catch (err) {
        // A pooled connection the archive had already closed: safe to try once more when nothing was streamed.
        if (!(err as { reusedSocket?: boolean }).reusedSocket || init.body instanceof Readable || init.signal?.aborted) throw err;
        res = await this.once(url, method, init);
      }
      const status = res.statusCode ?? 0;
      this.opts.onRequest?.({ method, status, ms: performance.now() - started });
      const body = withHelpers(res);
      if (status === 401 || status === 403) {
        await body.dump();
        throw new PacsError('unauthorized', `the PACS refused the gateway's credentials (HTTP ${status})`, status);
      }
      return { status, headers: res.headers, body };
    } catch (err) {
      if (err instanceof PacsError) throw err;
      const failed = classify(err, init.signal);
      this.opts.onRequest?.({ method, ms: performance.now() - started, failed: failed.kind });
      throw failed;
    }
  }

  private once(url: string, method: string, init: PacsRequestInit): Promise<IncomingMessage> {
    const target = new URL(url);
    const secure = target.protocol === 'https:';
    const headers: Record<string, string> = { ...init.headers };
    if (this.authHeader) headers.authorization = this.authHeader;
    if (typeof init.body === 'string' || Buffer.isBuffer(init.body)) headers['content-length'] = String(Buffer.byteLength(init.body));
    return new Promise((resolve, reject) => {
      const req = (secure ? https : http).request(target, {
        method,
        headers,
        agent: secure ? this.httpsAgent : this.httpAgent,
        signal: init.signal,
        timeout: this.opts.timeoutMs,
      });
      req.on('timeout', () => req.destroy(Object.assign(new Error('PACS socket idle timeout'), { code: 'PACS_TIMEOUT' })));
      req.on('error', (err) => reject(Object.assign(err, { reusedSocket: req.reusedSocket })));
      req.on('response', (res) => {
        // The idle timeout goes on guarding the body; errors after this point reach the body stream.
        res.on('error', () => {});
        resolve(res);
      });
      if (init.body instanceof Readable) {
        pipeline(init.body, req).catch((err) => req.destroy(err as Error));
      } else {
        req.end(init.body);
      }
    });
  }

  /** GET a JSON document; 204/404 give undefined. */
  async getJson<T>(url: string, signal?: AbortSignal, accept = 'application/dicom+json, application/json'): Promise<{ json: T | undefined; headers: IncomingHttpHeaders }> {
    const res = await this.request(url, { headers: { accept }, signal });
    if (res.status === 204 || res.status === 404) {
      await res.body.dump();
      return { json: undefined, headers: res.headers };
    }
    if (res.status >= 400) {
      await res.body.dump();
      throw new PacsError('rejected', `the PACS answered HTTP ${res.status}`, res.status);
    }
    let text: string;
    try {
      text = await res.body.text();
    } catch (err) {
      throw classify(err, signal);
    }
    if (text.trim() === '') return { json: undefined, headers: res.headers };
    try {
      return { json: JSON.parse(text) as T, headers: res.headers };
    } catch {
      throw new PacsError('bad_response', 'the PACS answered with malformed JSON');
    }
  }

  async close(): Promise<void> {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

export function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

function withHelpers(res: IncomingMessage): PacsBody {
  const body = res as PacsBody;
  body.text = async () => {
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  };
  body.dump = async () => {
    // Small error bodies are read to the end so the connection can be reused; anything big is cut.
    let seen = 0;
    try {
      for await (const c of res) {
        seen += (c as Buffer).length;
        if (seen > 64 * 1024) {
          res.destroy();
          return;
        }
      }
    } catch {
      // the body is being thrown away
    }
  };
  return body;
}

function classify(err: unknown, signal?: AbortSignal): PacsError {
  if (signal?.aborted) {
    const reason = signal.reason as { name?: string } | undefined;
    if (reason?.name === 'TimeoutError') return new PacsError('timeout', 'the PACS did not answer in time');
    return new PacsError('timeout', 'the request to the PACS was cancelled');
  }
  const code = (err as { code?: string }).code ?? '';
  if (code === 'PACS_TIMEOUT' || code === 'ETIMEDOUT') return new PacsError('timeout', 'the PACS did not answer in time');
  return new PacsError('unreachable', `the PACS could not be reached${code ? ` (${code})` : ''}`);
}

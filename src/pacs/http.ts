import { Agent, request, errors as undiciErrors, type Dispatcher } from 'undici';
import type { PacsAuth } from '../config/env.js';
import { PacsError } from './pacs-client.js';

/**
 * The one way the gateway talks HTTP to an archive: a keep-alive pool, the configured credentials,
 * timeouts, and failures turned into PacsError. undici.request streams bodies both ways (fetch does not:
 * it buffers streamed uploads, see FIELD-NOTES).
 */
export interface PacsHttpOptions {
  auth: PacsAuth;
  timeoutMs: number;
  onRequest?: (info: { method: string; status?: number; ms: number; failed?: string }) => void;
}

export interface PacsResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
}

export class PacsHttp {
  private readonly agent: Agent;
  private readonly authHeader?: string;

  constructor(private readonly opts: PacsHttpOptions) {
    this.agent = new Agent({ keepAliveTimeout: 4_000, connections: 64, headersTimeout: opts.timeoutMs, bodyTimeout: opts.timeoutMs });
    if (opts.auth.kind === 'basic') {
      this.authHeader = `Basic ${Buffer.from(`${opts.auth.username}:${opts.auth.password}`).toString('base64')}`;
    } else if (opts.auth.kind === 'bearer') {
      this.authHeader = `Bearer ${opts.auth.token}`;
    }
  }

  async request(
    url: string,
    init: { method?: Dispatcher.HttpMethod; headers?: Record<string, string>; body?: Dispatcher.DispatchOptions['body']; signal?: AbortSignal } = {},
  ): Promise<PacsResponse> {
    const method = init.method ?? 'GET';
    const headers: Record<string, string> = { ...init.headers };
    if (this.authHeader) headers.authorization = this.authHeader;
    const started = performance.now();
    try {
      const res = await request(url, { method, headers, body: init.body, signal: init.signal, dispatcher: this.agent });
      this.opts.onRequest?.({ method, status: res.statusCode, ms: performance.now() - started });
      if (res.statusCode === 401 || res.statusCode === 403) {
        await res.body.dump();
        throw new PacsError('unauthorized', `the PACS refused the gateway's credentials (HTTP ${res.statusCode})`, res.statusCode);
      }
      return { status: res.statusCode, headers: res.headers, body: res.body };
    } catch (err) {
      if (err instanceof PacsError) throw err;
      const failed = classify(err, init.signal);
      this.opts.onRequest?.({ method, ms: performance.now() - started, failed: failed.kind });
      throw failed;
    }
  }

  /** GET a JSON document; 204/404 give undefined. */
  async getJson<T>(url: string, signal?: AbortSignal, accept = 'application/dicom+json, application/json'): Promise<{ json: T | undefined; headers: PacsResponse['headers'] }> {
    const res = await this.request(url, { headers: { accept }, signal });
    if (res.status === 204 || res.status === 404) {
      await res.body.dump();
      return { json: undefined, headers: res.headers };
    }
    if (res.status >= 400) {
      await res.body.dump();
      throw new PacsError('rejected', `the PACS answered HTTP ${res.status}`, res.status);
    }
    const text = await res.body.text();
    if (text.trim() === '') return { json: undefined, headers: res.headers };
    try {
      return { json: JSON.parse(text) as T, headers: res.headers };
    } catch {
      throw new PacsError('bad_response', 'the PACS answered with malformed JSON');
    }
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

export function header(headers: PacsResponse['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

function classify(err: unknown, signal?: AbortSignal): PacsError {
  if (signal?.aborted) {
    const reason = signal.reason as { name?: string } | undefined;
    if (reason?.name === 'TimeoutError') return new PacsError('timeout', 'the PACS did not answer in time');
    return new PacsError('timeout', 'the request to the PACS was cancelled');
  }
  if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError || err instanceof undiciErrors.ConnectTimeoutError) {
    return new PacsError('timeout', 'the PACS did not answer in time');
  }
  const code = (err as { code?: string }).code ?? '';
  return new PacsError('unreachable', `the PACS could not be reached${code ? ` (${code})` : ''}`);
}

import { createHash } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { discard, outboundRequest, OutboundTimeoutError } from './outbound-http.js';
import { parseRetryAfter } from './backoff.js';
import { checkDownloadUrl, describeHost, DownloadRefusedError, guardedLookup, parseAllowedHosts, type HostRule } from './download-guard.js';
import { fsyncDir } from './durable-files.js';

/**
 * Fetches a report PDF from its presigned URL to a file, streamed: at most `maxBytes`, refused unless it
 * starts with `%PDF-` and ends with `%%EOF`, written to `<dest>.part`, fsync'd and renamed to `dest`.
 * Redirects are followed by hand (at most five), each target checked again by the download guard.
 * Errors say whether retrying can help (`permanent`) and never contain the URL's path or query.
 */

export interface PdfDownloadOptions {
  allowedHosts: string[];
  maxBytes: number;
  /** Whole-attempt limit: connect, headers and body. */
  timeoutMs: number;
  maxRedirects?: number;
}

export interface DownloadedPdf {
  bytes: number;
  sha256: string;
  /** host:port the PDF finally came from. */
  host: string;
  redirects: number;
}

export class DownloadError extends Error {
  constructor(
    message: string,
    readonly permanent: boolean,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'DownloadError';
  }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** 4xx answers worth another try: not there yet, timeouts, rate limits. Other 4xx (403 of an expired URL…) will not change. */
const RETRYABLE_4XX = new Set([404, 408, 409, 425, 429]);
const PDF_MAGIC = '%PDF-';
const EOF_WINDOW = 1024;

export class PdfDownloader {
  private readonly rules: HostRule[];

  constructor(private readonly opts: PdfDownloadOptions) {
    this.rules = parseAllowedHosts(opts.allowedHosts);
  }

  async download(url: string, dest: string, signal?: AbortSignal): Promise<DownloadedPdf> {
    let current: URL;
    try {
      current = new URL(url);
    } catch {
      throw new DownloadError('the presigned URL is not a valid URL', true);
    }
    const timeout = AbortSignal.timeout(this.opts.timeoutMs);
    const sig = signal ? AbortSignal.any([signal, timeout]) : timeout;
    const maxRedirects = this.opts.maxRedirects ?? 5;
    for (let hop = 0; ; hop++) {
      const host = describeHost(current);
      let allowListed: boolean;
      try {
        ({ allowListed } = checkDownloadUrl(current, this.rules));
      } catch (err) {
        throw new DownloadError(hop > 0 ? `redirect ${(err as Error).message}` : (err as Error).message, true);
      }
      // A fresh connection per hop: its resolver hook carries this hop's allow-list decision, and nothing is pooled across hosts.
      let res;
      try {
        res = await outboundRequest(current, {
          headers: { accept: 'application/pdf' },
          lookup: guardedLookup(allowListed) as never,
          signal: sig,
          idleTimeoutMs: Math.min(30_000, this.opts.timeoutMs),
        });
      } catch (err) {
        throw this.describeFailure(err, host, signal, timeout);
      }
      const statusCode = res.statusCode ?? 0;
      if (REDIRECTS.has(statusCode)) {
        await discard(res);
        const location = first(res.headers.location);
        if (!location) throw new DownloadError(`${host} answered HTTP ${statusCode} without a Location`, false);
        if (hop >= maxRedirects) throw new DownloadError(`more than ${maxRedirects} redirects (last from ${host})`, true);
        try {
          current = new URL(location, current);
        } catch {
          throw new DownloadError(`${host} redirected to an invalid URL`, true);
        }
        continue;
      }
      if (statusCode !== 200) {
        await discard(res);
        const s = statusCode;
        const retryable = s >= 500 || RETRYABLE_4XX.has(s);
        throw new DownloadError(`${host} answered HTTP ${s}`, !retryable, parseRetryAfter(res.headers['retry-after']));
      }
      const declared = Number(first(res.headers['content-length']));
      if (Number.isFinite(declared) && declared > this.opts.maxBytes) {
        res.destroy();
        throw new DownloadError(`the PDF is larger than REPORT_MAX_BYTES (${declared} > ${this.opts.maxBytes} bytes, declared by ${host})`, true);
      }
      try {
        const { bytes, sha256 } = await this.save(res, dest, host);
        return { bytes, sha256, host, redirects: hop };
      } catch (err) {
        if (err instanceof DownloadError) throw err;
        throw this.describeFailure(err, host, signal, timeout);
      }
    }
  }

  private async save(body: AsyncIterable<Buffer> & { destroy(): void }, dest: string, host: string): Promise<{ bytes: number; sha256: string }> {
    const part = `${dest}.part`;
    const hash = createHash('sha256');
    let bytes = 0;
    let head = Buffer.alloc(0);
    let tail = Buffer.alloc(0);
    const fh = await open(part, 'w', 0o600);
    try {
      try {
        for await (const chunk of body) {
          bytes += chunk.length;
          if (bytes > this.opts.maxBytes) {
            throw new DownloadError(`the PDF is larger than REPORT_MAX_BYTES (more than ${this.opts.maxBytes} bytes from ${host})`, true);
          }
          if (head.length < PDF_MAGIC.length) {
            head = Buffer.concat([head, chunk.subarray(0, PDF_MAGIC.length - head.length)]);
            if (head.length === PDF_MAGIC.length && head.toString('latin1') !== PDF_MAGIC) {
              throw new DownloadError(`${host} did not send a PDF (it does not start with %PDF-)`, true);
            }
          }
          hash.update(chunk);
          tail = Buffer.concat([tail, chunk]);
          if (tail.length > EOF_WINDOW) tail = tail.subarray(tail.length - EOF_WINDOW);
          await fh.write(chunk);
        }
        if (head.toString('latin1') !== PDF_MAGIC) throw new DownloadError(`${host} did not send a PDF (${bytes} bytes, no %PDF- header)`, true);
        // A transfer cut short can still look like a 200 with a PDF header: a complete PDF ends with %%EOF.
        if (!tail.includes('%%EOF')) throw new DownloadError(`the PDF from ${host} looks truncated (no %%EOF at its end, ${bytes} bytes)`, false);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(part, dest);
    } catch (err) {
      body.destroy();
      await rm(part, { force: true });
      throw err;
    }
    await fsyncDir(path.dirname(dest));
    return { bytes, sha256: hash.digest('hex') };
  }

  private describeFailure(err: unknown, host: string, outer: AbortSignal | undefined, timeout: AbortSignal): unknown {
    if (outer?.aborted) return err; // shutting down: not a failure of the download
    if (err instanceof DownloadError) return err;
    if (err instanceof DownloadRefusedError || (err as { code?: string })?.code === 'ERR_REPORT_DOWNLOAD_REFUSED') {
      return new DownloadError((err as Error).message, true);
    }
    if (timeout.aborted || err instanceof OutboundTimeoutError) {
      return new DownloadError(`${host} did not answer in time`, false);
    }
    const code = (err as { code?: string })?.code;
    return new DownloadError(`${host} could not be reached${code ? ` (${code})` : ''}`, false);
  }
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

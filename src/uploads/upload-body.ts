import type { Readable } from 'node:stream';
import { AppError } from '../http/errors.js';
import { DicomFormatError, Part10Walker, type DicomHeader } from './dicom-header.js';

export interface UploadBodyOptions {
  /** MAX_UPLOAD_BYTES: counted as the body arrives, whatever Content-Length said. */
  maxBytes: number;
  /** The client's Content-Length, when it sent one: the body must be exactly that long. */
  declaredLength?: number;
  /** The most bytes held before the header must be complete. */
  headerLimit: number;
  /** A body that sends nothing for this long is given up on. */
  idleMs: number;
}

/**
 * An upload's body, read once, in order, with backpressure: first a bounded prefix that must hold the
 * DICOM header, then the rest, yielded chunk by chunk to whoever stores it. Every chunk goes through the
 * Part 10 walker and the byte count, so a body that is too long, not DICOM, or ends inside an element
 * fails *before* its last byte is passed on. `failure` says why the body failed (as opposed to the archive).
 */
export class UploadBody {
  readonly walker = new Part10Walker();
  bytes = 0;
  done = false;
  failure?: AppError;
  private readonly it: AsyncIterator<Buffer>;
  private prefix: Buffer[] = [];
  private idle?: NodeJS.Timeout;
  private waiting = false;
  private stall?: (err: AppError) => void;

  constructor(
    private readonly req: Readable,
    private readonly opts: UploadBodyOptions,
  ) {
    this.it = req[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  /** Reads up to headerLimit bytes (less when the header completes sooner) and returns the header. */
  async readHeader(): Promise<DicomHeader> {
    let held = 0;
    while (!this.walker.headerComplete && held < this.opts.headerLimit) {
      const chunk = await this.next();
      if (!chunk) break;
      this.prefix.push(chunk);
      held += chunk.length;
    }
    if (!this.walker.headerComplete) {
      throw this.fail(
        new AppError(
          422,
          'header_too_large',
          `the StudyInstanceUID, SeriesInstanceUID and SOP Instance UID must be within the first ${this.opts.headerLimit} bytes`,
        ),
      );
    }
    return this.walker.header;
  }

  /** The whole body: the held prefix, then the rest as it arrives. Throws (with `failure` set) if it fails. */
  async *chunks(): AsyncGenerator<Buffer> {
    const prefix = this.prefix;
    this.prefix = [];
    yield* prefix;
    for (;;) {
      const chunk = await this.next();
      if (!chunk) return;
      yield chunk;
    }
  }

  /**
   * After a refusal, reads and throws away what the client is still sending for a little while, so it
   * gets to read the answer instead of a reset connection; then gives up on the connection.
   */
  discardRest(opts: { ms: number; bytes: number }): void {
    if (this.done || this.req.destroyed) return;
    this.clearIdle();
    const stop = setTimeout(() => this.req.destroy(), opts.ms);
    stop.unref();
    void (async () => {
      let discarded = 0;
      try {
        for (;;) {
          const r = await this.it.next();
          if (r.done) break;
          discarded += r.value.length;
          if (discarded > opts.bytes) {
            this.req.destroy();
            break;
          }
        }
      } catch {
        // the client went away: nothing left to discard
      } finally {
        clearTimeout(stop);
      }
    })();
  }

  private async next(): Promise<Buffer | undefined> {
    if (this.done) return undefined;
    if (this.failure) throw this.failure;
    let r: IteratorResult<Buffer>;
    this.waitForClient(true);
    try {
      r = await this.read();
    } catch {
      throw this.fail(this.failure ?? new AppError(400, 'upload_aborted', 'the upload was cut off before its end'));
    } finally {
      this.waitForClient(false);
      this.stall = undefined;
    }
    if (r.done) {
      this.clearIdle();
      this.done = true;
      if (this.opts.declaredLength !== undefined && this.bytes !== this.opts.declaredLength) {
        throw this.fail(new AppError(400, 'truncated', `the body has ${this.bytes} of the ${this.opts.declaredLength} bytes its Content-Length announced`));
      }
      this.checked(() => this.walker.end());
      return undefined;
    }
    const chunk = r.value;
    this.bytes += chunk.length;
    if (this.bytes > this.opts.maxBytes) {
      throw this.fail(new AppError(413, 'too_large', `the upload exceeds the gateway's limit of ${this.opts.maxBytes} bytes`));
    }
    this.checked(() => this.walker.feed(chunk));
    return chunk;
  }

  private checked(step: () => void): void {
    try {
      step();
    } catch (err) {
      if (!(err instanceof DicomFormatError)) throw err;
      const status = err.code === 'unsupported_transfer_syntax' ? 415 : 400;
      throw this.fail(new AppError(status, err.code, err.message));
    }
  }

  private fail(err: AppError): AppError {
    this.failure ??= err;
    return this.failure;
  }

  /** Only time spent waiting for the client counts as idle: a slow archive (backpressure) does not. */
  private waitForClient(waiting: boolean): void {
    this.waiting = waiting;
    if (!waiting) return;
    if (this.idle) {
      this.idle.refresh();
      return;
    }
    this.idle = setTimeout(() => {
      if (!this.waiting) return;
      this.stall?.(this.fail(new AppError(408, 'upload_stalled', `the upload sent nothing for ${Math.round(this.opts.idleMs / 1000)} s`)));
    }, this.opts.idleMs);
    this.idle.unref();
  }

  /**
   * The next chunk, or a rejection when the idle timer fires, so a stalled read gives up without tearing
   * the connection down (the client still gets its 408). One promise per read: racing every read
   * against one long-lived promise would keep every chunk reachable until that promise settled.
   */
  private read(): Promise<IteratorResult<Buffer>> {
    return new Promise((resolve, reject) => {
      this.stall = reject;
      this.it.next().then(resolve, reject);
    });
  }

  private clearIdle(): void {
    if (this.idle) clearTimeout(this.idle);
    this.idle = undefined;
  }
}

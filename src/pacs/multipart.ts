import { pipeline, Readable, Transform, type TransformCallback } from 'node:stream';

/**
 * Streaming reader for the first part of a multipart/related body (a WADO-RS instance response).
 * Only the part headers are buffered; the part's bytes then pass through a synchronous Transform as
 * sub-slices of the incoming chunks (an async generator per chunk cost ~10% of the throughput on a
 * 100 MB instance). Without a declared Content-Length, a delimiter's worth of tail is held back.
 */

export class MultipartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MultipartError';
  }
}

export interface Part {
  headers: Record<string, string>;
  /** Declared by the part's own Content-Length header, when the archive sends one. */
  length?: number;
  body: Readable;
}

const MAX_HEADER_BYTES = 64 * 1024;
const CRLFCRLF = Buffer.from('\r\n\r\n');

export function boundaryOf(contentType: string | undefined): string | undefined {
  if (!contentType || !/^multipart\/related/i.test(contentType.trim())) return undefined;
  const m = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return m ? (m[1] ?? m[2]) : undefined;
}

export async function readFirstPart(source: Readable, boundary: string): Promise<Part> {
  const { head, rest } = await readHead(source, Buffer.from(`--${boundary}`));
  const headers = parseHeaders(head);
  if (headers === 'closing') {
    source.destroy();
    throw new MultipartError('the multipart response holds no part');
  }
  const declared = headers['content-length'];
  const length = declared !== undefined && /^\d+$/.test(declared) ? Number(declared) : undefined;
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  const part = length !== undefined ? new ByLength(length, delimiter) : new ByDelimiter(delimiter);
  // What arrived with the headers goes in first; the rest of the response is piped after it.
  if (rest.length > 0) part.write(rest);
  const body = pipeline(source, part, () => {});
  return { headers, length, body };
}

/** Reads until the first part's headers are complete; returns them and what came after them. */
function readHead(source: Readable, open: Buffer): Promise<{ head: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const done = (err?: Error, value?: { head: string; rest: Buffer }) => {
      source.off('data', onData).off('end', onEnd).off('error', onError);
      source.pause();
      if (err) {
        source.destroy();
        reject(err);
      } else resolve(value!);
    };
    const onData = (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const at = buf.indexOf(open);
      const end = at >= 0 ? buf.indexOf(CRLFCRLF, at + open.length) : -1;
      if (end >= 0) done(undefined, { head: buf.subarray(at + open.length, end).toString('latin1'), rest: buf.subarray(end + CRLFCRLF.length) });
      else if (buf.length > MAX_HEADER_BYTES) done(new MultipartError('no multipart part headers within the first 64 KiB'));
    };
    const onEnd = () => done(new MultipartError('the response ended before its first part'));
    const onError = (err: Error) => done(err);
    source.on('data', onData).on('end', onEnd).on('error', onError);
  });
}

function parseHeaders(block: string): Record<string, string> | 'closing' {
  // The text right after the boundary is transport padding then CRLF; "--" there means the close delimiter.
  if (block.startsWith('--')) return 'closing';
  const headers: Record<string, string> = {};
  for (const line of block.split('\r\n').slice(1)) {
    const c = line.indexOf(':');
    if (c > 0) headers[line.slice(0, c).trim().toLowerCase()] = line.slice(c + 1).trim();
  }
  return headers;
}

/** The part declares its length: pass exactly that many bytes, then check that a delimiter follows. */
class ByLength extends Transform {
  private tail: Buffer = Buffer.alloc(0);

  constructor(
    private remaining: number,
    private readonly delimiter: Buffer,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.remaining >= chunk.length) {
      this.remaining -= chunk.length;
      cb(null, chunk);
      return;
    }
    const body = chunk.subarray(0, this.remaining);
    if (this.tail.length < this.delimiter.length) this.tail = Buffer.concat([this.tail, chunk.subarray(this.remaining, this.remaining + this.delimiter.length)]);
    this.remaining = 0;
    cb(null, body.length > 0 ? body : undefined);
  }

  override _flush(cb: TransformCallback): void {
    if (this.remaining > 0) cb(new MultipartError(`the PACS response ended ${this.remaining} bytes short of the part's declared length`));
    else if (!this.tail.subarray(0, this.delimiter.length).equals(this.delimiter)) cb(new MultipartError("the part's declared Content-Length does not end at a multipart delimiter"));
    else cb();
  }
}

/** No declared length: search for the delimiter, holding back just enough bytes to see it across chunks. */
class ByDelimiter extends Transform {
  private pending: Buffer = Buffer.alloc(0);
  private found = false;

  constructor(private readonly delimiter: Buffer) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.found) {
      cb();
      return;
    }
    const data = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const at = data.indexOf(this.delimiter);
    if (at >= 0) {
      this.found = true;
      this.pending = Buffer.alloc(0);
      cb(null, at > 0 ? data.subarray(0, at) : undefined);
      return;
    }
    const keep = Math.min(data.length, this.delimiter.length - 1);
    this.pending = data.subarray(data.length - keep);
    cb(null, data.length > keep ? data.subarray(0, data.length - keep) : undefined);
  }

  override _flush(cb: TransformCallback): void {
    cb(this.found ? undefined : new MultipartError('the PACS response ended inside a part, before its closing delimiter'));
  }
}

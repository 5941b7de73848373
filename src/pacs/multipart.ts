import { Readable } from 'node:stream';

/**
 * Streaming reader for the first part of a multipart/related body (a WADO-RS instance response).
 * The part's bytes are passed on as they arrive, as sub-slices of the incoming chunks: nothing is
 * buffered beyond the part headers and, when the part has no Content-Length, a delimiter's worth of tail.
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

export async function readFirstPart(source: AsyncIterable<Buffer>, boundary: string): Promise<Part> {
  const it = source[Symbol.asyncIterator]();
  const open = Buffer.from(`--${boundary}`);
  let buf: Buffer = Buffer.alloc(0);
  let start = -1;
  let headerEnd = -1;
  for (;;) {
    if (start < 0) {
      const i = buf.indexOf(open);
      if (i >= 0) start = i + open.length;
    }
    if (start >= 0) {
      headerEnd = buf.indexOf(CRLFCRLF, start);
      if (headerEnd >= 0) break;
    }
    if (buf.length > MAX_HEADER_BYTES) {
      await it.return?.();
      throw new MultipartError('no multipart part headers within the first 64 KiB');
    }
    const r = await it.next();
    if (r.done) throw new MultipartError('the response ended before its first part');
    buf = buf.length === 0 ? r.value : Buffer.concat([buf, r.value]);
  }
  const headers = parseHeaders(buf.subarray(start, headerEnd).toString('latin1'));
  if (headers['__closing'] === 'true') {
    await it.return?.();
    throw new MultipartError('the multipart response holds no part');
  }
  const rest = buf.subarray(headerEnd + CRLFCRLF.length);
  const declared = headers['content-length'];
  const length = declared !== undefined && /^\d+$/.test(declared) ? Number(declared) : undefined;
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  const gen = length !== undefined ? byLength(rest, it, length, delimiter) : byDelimiter(rest, it, delimiter);
  return { headers, length, body: Readable.from(gen, { objectMode: false, highWaterMark: 64 * 1024 }) };
}

function parseHeaders(block: string): Record<string, string> {
  const headers: Record<string, string> = {};
  // The text right after the boundary is transport padding then CRLF; "--" there means the close delimiter.
  if (block.startsWith('--')) return { __closing: 'true' };
  for (const line of block.split('\r\n').slice(1)) {
    const c = line.indexOf(':');
    if (c > 0) headers[line.slice(0, c).trim().toLowerCase()] = line.slice(c + 1).trim();
  }
  return headers;
}

/** The part declares its length: pass exactly that many bytes, then check that a delimiter follows. */
async function* byLength(first: Buffer, it: AsyncIterator<Buffer>, length: number, delimiter: Buffer): AsyncGenerator<Buffer> {
  let remaining = length;
  let chunk: Buffer | undefined = first;
  try {
    for (;;) {
      if (chunk && chunk.length > 0) {
        if (chunk.length <= remaining) {
          remaining -= chunk.length;
          yield chunk;
          chunk = undefined;
        } else {
          const part = chunk.subarray(0, remaining);
          chunk = chunk.subarray(remaining);
          remaining = 0;
          if (part.length > 0) yield part;
        }
      }
      if (remaining === 0) break;
      const r = await it.next();
      if (r.done) throw new MultipartError(`the PACS response ended ${remaining} bytes short of the part's declared length`);
      chunk = r.value;
    }
    // What follows the body must be the delimiter: otherwise the declared length was wrong.
    let tail = chunk ?? Buffer.alloc(0);
    while (tail.length < delimiter.length) {
      const r = await it.next();
      if (r.done) break;
      tail = Buffer.concat([tail, r.value]);
    }
    if (!tail.subarray(0, delimiter.length).equals(delimiter)) {
      throw new MultipartError("the part's declared Content-Length does not end at a multipart delimiter");
    }
    await drainEpilogue(it);
  } finally {
    await it.return?.();
  }
}

/** No declared length: search for the delimiter, holding back just enough bytes to see it across chunks. */
async function* byDelimiter(first: Buffer, it: AsyncIterator<Buffer>, delimiter: Buffer): AsyncGenerator<Buffer> {
  let pending = first;
  try {
    for (;;) {
      const at = pending.indexOf(delimiter);
      if (at >= 0) {
        if (at > 0) yield pending.subarray(0, at);
        return;
      }
      const keep = Math.min(pending.length, delimiter.length - 1);
      if (pending.length > keep) yield pending.subarray(0, pending.length - keep);
      const r = await it.next();
      if (r.done) throw new MultipartError('the PACS response ended inside a part, before its closing delimiter');
      const tail = pending.subarray(pending.length - keep);
      pending = tail.length === 0 ? r.value : Buffer.concat([tail, r.value]);
    }
  } finally {
    await it.return?.();
  }
}

/** Reads the few bytes of close delimiter left, so the connection to the PACS can be reused. */
async function drainEpilogue(it: AsyncIterator<Buffer>, limit = 64 * 1024): Promise<void> {
  let seen = 0;
  while (seen <= limit) {
    const r = await it.next();
    if (r.done) return;
    seen += r.value.length;
  }
}

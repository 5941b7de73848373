import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Request, Response } from 'express';
import { parseRange } from './range.js';
import { noteStreamed } from '../observability/memory.js';

/**
 * The one place that sends a file-like stream: Content-Length, Range (206/416), HEAD, client aborts.
 * If the source fails after the headers went out, the connection is destroyed so the client sees a
 * broken transfer, never a silently truncated 200.
 */
export interface SendableFile {
  body: Readable;
  length?: number;
  contentType: string;
  fileName: string;
  /** Whether Range requests can be honoured (the bytes are the stored ones and the length is known). */
  ranges: boolean;
  /** `inline` lets a browser show the file (media links); downloads default to `attachment`. */
  disposition?: 'attachment' | 'inline';
}

export async function sendStream(req: Request, res: Response, file: SendableFile, onBytes?: (n: number) => void): Promise<{ bytes: number; status: number }> {
  res.setHeader('Content-Type', file.contentType);
  res.setHeader('Content-Disposition', contentDisposition(file.disposition ?? 'attachment', file.fileName));
  res.setHeader('Cache-Control', 'private, no-store');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  let source: Readable = file.body;
  let status = 200;
  const range = file.ranges ? parseRange(req.get('range'), file.length) : ({ kind: 'none' } as const);
  if (file.ranges && file.length !== undefined) res.setHeader('Accept-Ranges', 'bytes');
  if (range.kind === 'unsatisfiable') {
    file.body.destroy();
    res.status(416).setHeader('Content-Range', `bytes */${file.length}`);
    res.json({ error: { code: 'range_not_satisfiable', message: 'the requested range is outside the file' }, requestId: res.locals.requestId });
    return { bytes: 0, status: 416 };
  }
  if (range.kind === 'range') {
    status = 206;
    res.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${file.length}`);
    res.setHeader('Content-Length', String(range.end - range.start + 1));
    source = Readable.from(slice(file.body, range.start, range.end + 1), { objectMode: false });
  } else if (file.length !== undefined) {
    res.setHeader('Content-Length', String(file.length));
  }
  res.status(status);
  if (req.method === 'HEAD') {
    file.body.destroy();
    res.end();
    return { bytes: 0, status };
  }
  let bytes = 0;
  const expected = range.kind === 'range' ? range.end - range.start + 1 : file.length;
  const count = new CountingPassThrough(expected, (n) => {
    bytes += n;
    onBytes?.(n);
  });
  try {
    await pipeline(source, count, res);
  } catch (err) {
    file.body.destroy();
    if (!res.destroyed) res.destroy(err as Error);
    throw err;
  }
  return { bytes, status };
}

/**
 * RFC 6266: an ASCII `filename` for every client, plus `filename*` (RFC 8187, UTF-8) when the name is not
 * plain ASCII — a header value cannot carry such characters as they are.
 */
function contentDisposition(type: 'attachment' | 'inline', name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]/g, '_').replace(/["\\\r\n]/g, '_');
  if (ascii === name) return `${type}; filename="${ascii}"`;
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${type}; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

/** Counts what passes and fails the stream, before the response ends, if fewer bytes came than promised. */
class CountingPassThrough extends Transform {
  private seen = 0;
  constructor(
    private readonly expected: number | undefined,
    private readonly onChunk: (n: number) => void,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length;
    this.onChunk(chunk.length);
    noteStreamed(chunk.length);
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    if (this.expected !== undefined && this.seen !== this.expected) {
      cb(new Error(`source ended after ${this.seen} of ${this.expected} bytes`));
      return;
    }
    cb();
  }
}

/** Bytes [start, end) of a stream; stops reading the source once the end is passed. */
async function* slice(source: Readable, start: number, end: number): AsyncGenerator<Buffer> {
  let pos = 0;
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      const from = Math.max(0, start - pos);
      const to = Math.min(chunk.length, end - pos);
      pos += chunk.length;
      if (to > from) yield chunk.subarray(from, to);
      if (pos >= end) return;
    }
  } finally {
    source.destroy();
  }
}

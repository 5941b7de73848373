import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { AppError } from '../http/errors.js';
import { UploadBody, type UploadBodyOptions } from './upload-body.js';

/** A minimal explicit VR little endian Part 10 object with `pixels` bytes of pixel data. */
function object(pixels: number, before = 0): Buffer {
  const el = (g: number, e: number, vr: string, v: Buffer) => {
    const long = vr === 'OB' || vr === 'OW';
    const h = Buffer.alloc(long ? 12 : 8);
    h.writeUInt16LE(g, 0);
    h.writeUInt16LE(e, 2);
    h.write(vr, 4, 'latin1');
    if (long) h.writeUInt32LE(v.length, 8);
    else h.writeUInt16LE(v.length, 6);
    return Buffer.concat([h, v]);
  };
  const ui = (s: string) => Buffer.from(s.length % 2 ? `${s}\0` : s);
  return Buffer.concat([
    Buffer.alloc(128),
    Buffer.from('DICM'),
    el(2, 0x10, 'UI', ui('1.2.840.10008.1.2.1')),
    el(8, 0x16, 'UI', ui('1.2.840.10008.5.1.4.1.1.7')),
    el(8, 0x18, 'UI', ui('2.25.3')),
    ...(before ? [el(9, 0x1010, 'OB', Buffer.alloc(before))] : []),
    el(0x20, 0x0d, 'UI', ui('2.25.1')),
    el(0x20, 0x0e, 'UI', ui('2.25.2')),
    el(0x7fe0, 0x10, 'OW', Buffer.alloc(pixels, 1)),
  ]);
}

const OPTS: UploadBodyOptions = { maxBytes: 1 << 20, headerLimit: 1024, idleMs: 5_000 };

async function consume(body: UploadBody): Promise<number> {
  let n = 0;
  for await (const c of body.chunks()) n += c.length;
  return n;
}

async function failure(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof AppError) return `${err.status} ${err.code}`;
    throw err;
  }
  return 'ok';
}

/** The file in `chunk`-byte pieces, one per turn of the event loop (so reads do not coalesce them). */
function feed(file: Buffer, chunk = 100): Readable {
  return Readable.from(
    (async function* () {
      for (let i = 0; i < file.length; i += chunk) {
        await new Promise((r) => setImmediate(r));
        yield file.subarray(i, i + chunk);
      }
    })(),
    { objectMode: false },
  );
}

describe('UploadBody', () => {
  it('holds only the prefix needed for the header, then yields every byte once, in order', async () => {
    const file = object(10_000);
    const body = new UploadBody(feed(file), { ...OPTS, declaredLength: file.length });
    const header = await body.readHeader();
    expect(header.studyInstanceUid).toBe('2.25.1');
    expect(body.bytes).toBeLessThanOrEqual(400);
    const out: Buffer[] = [];
    for await (const c of body.chunks()) out.push(c);
    expect(Buffer.concat(out).equals(file)).toBe(true);
    expect(body.done).toBe(true);
  });

  it('refuses a header that does not complete within the limit', async () => {
    const body = new UploadBody(feed(object(10_000, 2000)), { ...OPTS, headerLimit: 1000 });
    expect(await failure(body.readHeader())).toBe('422 header_too_large');
  });

  it('counts the body against the limit as it streams', async () => {
    const body = new UploadBody(feed(object(10_000)), { ...OPTS, maxBytes: 5_000 });
    await body.readHeader();
    expect(await failure(consume(body))).toBe('413 too_large');
    expect(body.failure?.code).toBe('too_large');
  });

  it('refuses a body shorter than its Content-Length, and a file that ends inside an element', async () => {
    const file = object(1000);
    const short = new UploadBody(feed(file), { ...OPTS, declaredLength: file.length + 10 });
    await short.readHeader();
    expect(await failure(consume(short))).toBe('400 truncated');
    const cut = new UploadBody(feed(file.subarray(0, file.length - 10)), OPTS);
    await cut.readHeader();
    expect(await failure(consume(cut))).toBe('400 truncated');
  });

  it('gives up on a client that stops sending, without waiting on the network', async () => {
    const s = new PassThrough();
    s.write(object(1000).subarray(0, 50));
    const body = new UploadBody(s, { ...OPTS, idleMs: 100 });
    expect(await failure(body.readHeader())).toBe('408 upload_stalled');
  });

  it('reports a client that went away mid-body', async () => {
    const s = new PassThrough();
    const file = object(5000);
    s.write(file.subarray(0, 1000));
    const body = new UploadBody(s, OPTS);
    await body.readHeader();
    setTimeout(() => s.destroy(new Error('ECONNRESET')), 20);
    expect(await failure(consume(body))).toBe('400 upload_aborted');
  });
});

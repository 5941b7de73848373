import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { boundaryOf, readFirstPart } from './multipart.js';

const boundary = 'b0und-ary';
const payload = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7) % 256));

function message(withLength: boolean, body = payload): Buffer {
  const head = `--${boundary}\r\nContent-Type: application/dicom\r\n${withLength ? `Content-Length: ${body.length}\r\n` : ''}MIME-Version: 1.0\r\n\r\n`;
  return Buffer.concat([Buffer.from(head), body, Buffer.from(`\r\n--${boundary}--\r\n`)]);
}

function chunked(buf: Buffer, size: number): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) chunks.push(buf.subarray(i, i + size));
  return Readable.from(chunks);
}

async function collect(r: Readable): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of r) out.push(c as Buffer);
  return Buffer.concat(out);
}

describe('multipart/related first part', () => {
  it('finds the boundary in a content type', () => {
    expect(boundaryOf('multipart/related; type="application/dicom"; boundary=abc-123')).toBe('abc-123');
    expect(boundaryOf('multipart/related; boundary="quoted;x"; type=application/dicom')).toBe('quoted;x');
    expect(boundaryOf('application/dicom')).toBeUndefined();
  });

  for (const withLength of [true, false]) {
    it(`extracts the exact bytes at any chunking (${withLength ? 'declared length' : 'delimiter search'})`, async () => {
      const msg = message(withLength);
      for (const size of [1, 2, 3, 7, 13, 64, 100, 4096, msg.length]) {
        const part = await readFirstPart(chunked(msg, size), boundary);
        expect(part.length).toBe(withLength ? payload.length : undefined);
        expect((await collect(part.body)).equals(payload)).toBe(true);
      }
    });

    it(`fails, not truncates, when the body is cut off (${withLength ? 'declared length' : 'delimiter search'})`, async () => {
      const msg = message(withLength);
      const cut = msg.subarray(0, msg.length - 200);
      const part = await readFirstPart(chunked(cut, 512), boundary);
      await expect(collect(part.body)).rejects.toThrow(/ended/);
    });
  }

  it('keeps a payload that contains the boundary text without CRLF', async () => {
    const tricky = Buffer.concat([payload, Buffer.from(`--${boundary}`), payload]);
    const part = await readFirstPart(chunked(message(false, tricky), 10), boundary);
    expect((await collect(part.body)).equals(tricky)).toBe(true);
  });

  it('refuses a declared length that does not end at a delimiter', async () => {
    const msg = message(true).toString('latin1').replace(`Content-Length: ${payload.length}`, `Content-Length: ${payload.length - 1}`);
    const part = await readFirstPart(chunked(Buffer.from(msg, 'latin1'), 999), boundary);
    await expect(collect(part.body)).rejects.toThrow(/delimiter/);
  });

  it('refuses an empty multipart body', async () => {
    await expect(readFirstPart(chunked(Buffer.from(`--${boundary}--\r\n`), 4), boundary)).rejects.toThrow(/no part|ended/);
  });
});

import { createServer, type IncomingMessage, type Server } from 'node:http';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PacsHttp } from './http.js';
import { PacsError } from './pacs-client.js';
import { describeReason, StowClient } from './stow.js';

/** A fake archive: records each STOW request and answers what the test queued. */
let server: Server;
let root: string;
const seen: Array<{ headers: IncomingMessage['headers']; body: Buffer; complete: boolean }> = [];
let answer: { status: number; json?: unknown } = { status: 200 };

const ref = (sop: string, warning?: number) => ({
  '00081155': { vr: 'UI', Value: [sop] },
  ...(warning !== undefined ? { '00081196': { vr: 'US', Value: [warning] } } : {}),
});
const failed = (sop: string, reason: number) => ({ '00081155': { vr: 'UI', Value: [sop] }, '00081197': { vr: 'US', Value: [reason] } });

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    const entry = { headers: req.headers, body: Buffer.alloc(0), complete: false };
    seen.push(entry);
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => {});
    req.on('end', () => {
      entry.body = Buffer.concat(chunks);
      entry.complete = true;
      res.writeHead(answer.status, { 'content-type': 'application/dicom+json' });
      res.end(answer.json === undefined ? '' : JSON.stringify(answer.json));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  root = `http://127.0.0.1:${(server.address() as { port: number }).port}/dicom-web`;
});
const http = new PacsHttp({ auth: { kind: 'basic', username: 'u', password: 'p' }, timeoutMs: 5000 });
afterAll(async () => {
  await http.close();
  await new Promise<void>((r) => server.close(() => r()));
});

const client = () => new StowClient(root, http);

describe('StowClient', () => {
  it('frames the object as multipart/related with a Content-Length, to the study path, with credentials', async () => {
    answer = { status: 200, json: { '00081199': { vr: 'SQ', Value: [ref('2.25.3')] } } };
    const object = Buffer.from('DICOM-BYTES');
    const r = await client().store(Readable.from([object.subarray(0, 5), object.subarray(5)]), { length: object.length, studyUid: '2.25.1', sopInstanceUid: '2.25.3' });
    expect(r).toEqual({ stored: true, status: 200, failures: [], warnings: [], warning: undefined });
    const req = seen.at(-1)!;
    const boundary = /boundary=(\S+)/.exec(req.headers['content-type']!)![1]!;
    expect(req.headers['content-type']).toMatch(/^multipart\/related; type="application\/dicom"/);
    expect(req.headers.authorization).toBe(`Basic ${Buffer.from('u:p').toString('base64')}`);
    expect(req.body.toString()).toBe(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\nDICOM-BYTES\r\n--${boundary}--\r\n`);
    expect(Number(req.headers['content-length'])).toBe(req.body.length);
  });

  it('is stored only when this SOP Instance UID is in ReferencedSOPSequence', async () => {
    // Orthanc answers 200 with both sequences empty when it stored nothing.
    answer = { status: 200, json: { '00081198': { vr: 'SQ' }, '00081199': { vr: 'SQ' } } };
    expect((await client().store(Readable.from([Buffer.from('x')]), { sopInstanceUid: '2.25.3' })).stored).toBe(false);
    answer = { status: 200, json: { '00081199': { vr: 'SQ', Value: [ref('2.25.99')] } } };
    expect((await client().store(Readable.from([Buffer.from('x')]), { sopInstanceUid: '2.25.3' })).stored).toBe(false);
    answer = { status: 202, json: [{ '00081199': { vr: 'SQ', Value: [ref('2.25.3', 0xb000)] } }] };
    const r = await client().store(Readable.from([Buffer.from('x')]), { sopInstanceUid: '2.25.3' });
    expect([r.stored, r.warnings]).toEqual([true, [0xb000]]);
  });

  it('reads 409 and FailedSOPSequence with its FailureReason', async () => {
    answer = { status: 409, json: { '00081198': { vr: 'SQ', Value: [failed('2.25.3', 272)] } } };
    const r = await client().store(Readable.from([Buffer.from('x')]), { sopInstanceUid: '2.25.3' });
    expect(r).toMatchObject({ stored: false, status: 409, failures: [{ sopInstanceUid: '2.25.3', reason: 272 }] });
    expect(describeReason(272)).toBe('processing failure (0x0110)');
    expect(describeReason(0xa7ff)).toBe('out of resources (0xA7FF)');
    expect(describeReason(0x1234)).toBe('reason 0x1234');
  });

  it('throws a PacsError on a 5xx without failures, without echoing the body', async () => {
    answer = { status: 503, json: { secret: 'internal detail' } };
    const err = await client().store(Readable.from([Buffer.from('x')])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PacsError);
    expect((err as PacsError).message).toBe('the PACS answered HTTP 503 to STOW-RS');
  });

  it('never completes the request when the object stream fails: no closing boundary reaches the archive', async () => {
    const count = seen.length;
    const failing = (async function* () {
      yield Buffer.alloc(1000, 1);
      await new Promise((r) => setTimeout(r, 50));
      throw new Error('client went away');
    })();
    await expect(client().store(failing, { length: 5000 })).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 100));
    expect(seen.length).toBe(count + 1);
    expect(seen.at(-1)!.complete).toBe(false);
  });
});

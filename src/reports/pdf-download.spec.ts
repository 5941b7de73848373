import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { minimalPdf } from '../../test/support/pdf.js';
import { DownloadError, PdfDownloader } from './pdf-download.js';

const pdf = minimalPdf({ text: 'Findings: none.' });
let server: Server;
let base: string;
let host: string;
let hits: string[] = [];
const dir = mkdtempSync(path.join(tmpdir(), 'avara-dl-'));

const routes: Record<string, (res: ServerResponse) => void> = {
  '/ok.pdf': (res) => res.writeHead(200, { 'content-type': 'application/pdf', 'content-length': pdf.length }).end(pdf),
  '/chunked.pdf': (res) => {
    res.writeHead(200, { 'content-type': 'application/pdf' });
    res.write(pdf.subarray(0, 100));
    setTimeout(() => res.end(pdf.subarray(100)), 20);
  },
  '/html': (res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>Access denied</html>'),
  '/big-declared.pdf': (res) => res.writeHead(200, { 'content-length': 10_000_000 }).end(),
  '/big-chunked.pdf': (res) => {
    res.writeHead(200);
    res.write(pdf.subarray(0, 50));
    const fill = Buffer.alloc(64 * 1024, 0x30);
    let n = 0;
    const more = () => (n++ < 64 ? res.write(fill, () => setImmediate(more)) : res.end());
    more();
  },
  '/truncated.pdf': (res) => res.writeHead(200, { 'content-length': pdf.length - 10 }).end(pdf.subarray(0, pdf.length - 10)),
  '/cut.pdf': (res) => {
    res.writeHead(200, { 'content-length': pdf.length });
    res.write(pdf.subarray(0, 100), () => res.destroy());
  },
  '/busy': (res) => res.writeHead(503, { 'retry-after': '7' }).end(),
  '/forbidden': (res) => res.writeHead(403).end('Request has expired'),
  '/missing': (res) => res.writeHead(404).end(),
  '/slow': () => undefined, // never answers
  '/redirect-same': (res) => res.writeHead(302, { location: '/ok.pdf?X-Amz-Signature=abc' }).end(),
  '/redirect-metadata': (res) => res.writeHead(302, { location: 'https://169.254.169.254/latest/meta-data/' }).end(),
  '/redirect-http': (res) => res.writeHead(307, { location: 'http://reports.example/r.pdf' }).end(),
  '/redirect-loop': (res) => res.writeHead(301, { location: '/redirect-loop' }).end(),
};

beforeAll(async () => {
  server = createServer((req, res) => {
    hits.push(req.url!);
    (routes[req.url!.split('?')[0]!] ?? ((r: ServerResponse) => r.writeHead(404).end()))(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  host = `127.0.0.1:${port}`;
  base = `http://${host}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

const downloader = (over: Partial<ConstructorParameters<typeof PdfDownloader>[0]> = {}) =>
  new PdfDownloader({ allowedHosts: [host], maxBytes: 1024 * 1024, timeoutMs: 5000, ...over });
let n = 0;
const dest = () => path.join(dir, `r${n++}.pdf`);

async function failure(url: string, d = downloader()): Promise<DownloadError> {
  const to = dest();
  const err = await d.download(url, to).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DownloadError);
  expect(existsSync(to)).toBe(false);
  expect(readdirSync(dir).filter((f) => f.endsWith('.part'))).toEqual([]);
  return err as DownloadError;
}

describe('PdfDownloader', () => {
  it('streams the PDF to disk, byte for byte, with its size and hash', async () => {
    for (const route of ['/ok.pdf', '/chunked.pdf', '/redirect-same']) {
      const to = dest();
      const got = await downloader().download(`${base}${route}`, to);
      expect(readFileSync(to).equals(pdf)).toBe(true);
      expect(got).toMatchObject({ bytes: pdf.length, sha256: createHash('sha256').update(pdf).digest('hex'), host });
    }
  });

  it('refuses what is not a PDF, permanently', async () => {
    const e = await failure(`${base}/html`);
    expect(e.permanent).toBe(true);
    expect(e.message).toMatch(/did not send a PDF/);
  });

  it('refuses a PDF over the size cap, declared or streamed, permanently', async () => {
    const d = downloader({ maxBytes: 100_000 });
    for (const route of ['/big-declared.pdf', '/big-chunked.pdf']) {
      const e = await failure(`${base}${route}`, d);
      expect(e.permanent).toBe(true);
      expect(e.message).toMatch(/larger than REPORT_MAX_BYTES/);
    }
  });

  it('treats a truncated or cut transfer as worth retrying', async () => {
    const t = await failure(`${base}/truncated.pdf`);
    expect(t).toMatchObject({ permanent: false });
    expect(t.message).toMatch(/truncated/);
    expect((await failure(`${base}/cut.pdf`)).permanent).toBe(false);
  });

  it('retries server trouble and missing objects, not refusals', async () => {
    expect(await failure(`${base}/busy`)).toMatchObject({ permanent: false, retryAfterMs: 7000 });
    expect(await failure(`${base}/missing`)).toMatchObject({ permanent: false });
    expect(await failure(`${base}/forbidden`)).toMatchObject({ permanent: true, message: expect.stringMatching(/HTTP 403/) });
    const slow = await failure(`${base}/slow`, downloader({ timeoutMs: 1000 }));
    expect(slow).toMatchObject({ permanent: false, message: expect.stringMatching(/did not answer in time/) });
  });

  it('refuses hosts and addresses outside the policy without connecting', async () => {
    hits = [];
    const port = host.split(':')[1];
    const cases: Array<[string, RegExp]> = [
      [`http://localhost:${port}/ok.pdf`, /only https/], // listed as 127.0.0.1:port, not as localhost
      [`https://localhost:${port}/ok.pdf`, /resolves to .* loopback/], // a name is judged by what it resolves to
      [`https://127.0.0.1:${Number(port) + 1}/ok.pdf`, /loopback/], // listed with another port only
      ['https://169.254.169.254/latest/meta-data/', /link-local/],
      ['https://10.0.0.8/r.pdf', /private/],
      ['https://[::1]/r.pdf', /loopback/],
    ];
    for (const [url, reason] of cases) {
      const e = await failure(url);
      expect(e.permanent, url).toBe(true);
      expect(e.message, url).toMatch(reason);
      expect(e.message).not.toMatch(/ok\.pdf|meta-data/);
    }
    expect(hits).toEqual([]);
  });

  it('checks every redirect again', async () => {
    expect((await failure(`${base}/redirect-metadata`)).message).toMatch(/redirect refused .*169\.254\.169\.254.*link-local/);
    expect((await failure(`${base}/redirect-http`)).message).toMatch(/redirect refused .*only https/);
    expect((await failure(`${base}/redirect-loop`)).message).toMatch(/more than 5 redirects/);
  });
});

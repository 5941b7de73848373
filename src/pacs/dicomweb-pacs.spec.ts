import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DicomwebPacs } from './dicomweb-pacs.js';
import { PacsHttp } from './http.js';

/**
 * QIDO paging against a small fake archive that caps every answer at 4 results and, like dcm4chee, says so
 * in a Warning header. (Orthanc caps silently; test/study-access.test.ts covers that against the real thing.)
 */
const STUDY = '1.2.3';
const instances = Array.from({ length: 11 }, (_, i) => ({
  '0020000D': { vr: 'UI', Value: [STUDY] },
  '0020000E': { vr: 'UI', Value: [`1.2.3.${(i % 3) + 1}`] },
  '00080018': { vr: 'UI', Value: [`1.2.3.9.${i + 1}`] },
}));
const CAP = 4;
const seen: string[] = [];
let server: Server;
let root: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    seen.push(url.pathname + url.search);
    const offset = Number(url.searchParams.get('offset') ?? 0);
    const limit = Math.min(Number(url.searchParams.get('limit') ?? CAP), CAP);
    let all: unknown[] = [];
    if (url.pathname === '/studies') all = [{ '0020000D': { vr: 'UI', Value: [STUDY] }, '00201208': { vr: 'IS', Value: [11] }, '00201206': { vr: 'IS', Value: [3] } }];
    else if (url.pathname === `/studies/${STUDY}/instances`) all = instances;
    const page = all.slice(offset, offset + limit);
    const headers: Record<string, string> = { 'content-type': 'application/dicom+json' };
    if (offset + page.length < all.length) headers.warning = `299 fake: There are ${all.length - offset - page.length} additional results that match the query.`;
    res.writeHead(200, headers).end(JSON.stringify(page));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  root = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('QIDO listing against an archive that caps results', () => {
  const http = new PacsHttp({ auth: { kind: 'none' }, timeoutMs: 5000 });

  it('follows the Warning header with offsets until it has every instance', async () => {
    seen.length = 0;
    const refs = await new DicomwebPacs(root, http).listInstances(STUDY);
    expect(refs.map((r) => r.sopUid)).toEqual(instances.map((i) => i['00080018'].Value[0]));
    expect(seen.filter((s) => s.startsWith(`/studies/${STUDY}/instances`)).map((s) => new URL(s, 'http://x').searchParams.get('offset'))).toEqual([null, '4', '8']);
  });

  it('asks for fixed pages with QIDO_PAGE_SIZE', async () => {
    seen.length = 0;
    const refs = await new DicomwebPacs(root, http, 3).listInstances(STUDY);
    expect(refs).toHaveLength(11);
    expect(seen.filter((s) => s.startsWith(`/studies/${STUDY}/instances`)).every((s) => s.includes('limit=3'))).toBe(true);
  });
});

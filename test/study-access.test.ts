import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LinkSigner } from '../src/links/link-signer.js';
import { buildLargeFixture, buildStudyFixtures, newUid, type Fixture } from './support/fixtures.js';
import { startGateway, studyAccessEvent, TEST_URL_SECRET, type RunningGateway } from './support/gateway.js';
import { startOrthanc, type TestOrthanc } from './support/orthanc.js';

/**
 * study.access_requested end to end: a real Orthanc holding DICOM of several transfer syntaxes, a
 * multi-frame object, non-ASCII character sets and a 100 MiB instance; every link's bytes are compared
 * with Orthanc's stored file.
 */
let orthanc: TestOrthanc;
let gw: RunningGateway;
let small: Fixture[];
let large: Fixture;
const orthancIds = new Map<string, string>(); // sopUid -> Orthanc id

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function access(studyUid: string, g = gw) {
  const res = await g.send(studyAccessEvent(studyUid));
  expect(res.status).toBe(200);
  return (await res.json()) as { authorized: boolean; urls: string[]; error?: string };
}

function sopOf(url: string): string {
  const token = url.split('/').pop()!;
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).so as string;
}

beforeAll(async () => {
  [orthanc, small, large] = await Promise.all([startOrthanc(), buildStudyFixtures(), buildLargeFixture({ sizeMiB: 100 })]);
  for (const f of [...small, large]) orthancIds.set(f.sopUid, await orthanc.upload(f.path));
});

afterAll(async () => {
  await orthanc?.stop();
});

// Both PACS paths run the same suite against the same Orthanc, so neither can drift.
describe.each(['dicomweb', 'orthanc'] as const)('study access against a real Orthanc (%s path)', (flavor) => {
  beforeAll(async () => {
    gw = await startGateway(orthanc, { PACS_FLAVOR: flavor });
    expect(gw.gateway.pacs.flavor).toBe(flavor);
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it('answers one signed link per instance, and each streams the stored bytes', async () => {
    const studyUid = small[0]!.studyUid;
    const answer = await access(studyUid);
    expect(answer.authorized).toBe(true);
    expect(answer.error).toBeUndefined();
    expect(answer.urls).toHaveLength(small.length);
    expect(new Set(answer.urls.map(sopOf))).toEqual(new Set(small.map((f) => f.sopUid)));
    for (const url of answer.urls) {
      expect(url.startsWith(`${gw.url}/v1/instances/`)).toBe(true);
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/dicom');
      const body = Buffer.from(await res.arrayBuffer());
      expect(Number(res.headers.get('content-length'))).toBe(body.length);
      const stored = await orthanc.storedFile(orthancIds.get(sopOf(url))!);
      expect(body.equals(stored)).toBe(true);
      expect(body.subarray(128, 132).toString()).toBe('DICM');
    }
  });

  it('covers the transfer syntaxes and kinds the fixtures promise', () => {
    const syntaxes = new Set(small.map((f) => f.transferSyntax));
    for (const ts of ['1.2.840.10008.1.2', '1.2.840.10008.1.2.1', '1.2.840.10008.1.2.2', '1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.5']) {
      expect(syntaxes).toContain(ts);
    }
    expect(small.map((f) => f.name)).toEqual(expect.arrayContaining(['multiframe', 'latin1', 'utf8']));
  });

  it('streams a 100 MiB instance byte for byte', async () => {
    const answer = await access(large.studyUid);
    expect(answer.urls).toHaveLength(1);
    const res = await fetch(answer.urls[0]!);
    expect(res.status).toBe(200);
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      bytes += chunk.length;
    }
    expect(bytes).toBe(large.sizeBytes);
    expect(hash.digest('hex')).toBe(sha256(await orthanc.storedFile(orthancIds.get(large.sopUid)!)));
  });

  it('serves byte ranges and HEAD', async () => {
    const f = small.find((x) => x.name === 'explicit-le')!;
    const [url] = (await access(f.studyUid)).urls.filter((u) => sopOf(u) === f.sopUid);
    const stored = await orthanc.storedFile(orthancIds.get(f.sopUid)!);
    const part = await fetch(url!, { headers: { range: 'bytes=128-131' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 128-131/${stored.length}`);
    expect(Buffer.from(await part.arrayBuffer()).toString()).toBe('DICM');
    const tail = await fetch(url!, { headers: { range: 'bytes=-100' } });
    expect(Buffer.from(await tail.arrayBuffer()).equals(stored.subarray(stored.length - 100))).toBe(true);
    const outside = await fetch(url!, { headers: { range: `bytes=${stored.length}-` } });
    expect(outside.status).toBe(416);
    const head = await fetch(url!, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get('content-length'))).toBe(stored.length);
    expect(head.headers.get('accept-ranges')).toBe('bytes');
  });

  it('answers CORS preflight and exposes the headers a browser viewer needs', async () => {
    const [url] = (await access(small[0]!.studyUid)).urls;
    const pre = await fetch(url!, { method: 'OPTIONS', headers: { origin: 'https://viewer.avara.example', 'access-control-request-method': 'GET' } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('*');
    const res = await fetch(url!, { headers: { origin: 'https://viewer.avara.example' } });
    expect(res.headers.get('access-control-expose-headers')).toMatch(/Content-Range/);
    await res.arrayBuffer();
  });

  it('refuses tampered, foreign, expired and wrong-method links before touching the PACS', async () => {
    const [url] = (await access(small[0]!.studyUid)).urls;
    const [base, token] = [url!.slice(0, url!.lastIndexOf('/') + 1), url!.split('/').pop()!];
    const [h, p, s] = token.split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...claims, so: large.sopUid })).toString('base64url')}.${s}`;
    const cases: Array<[string, RequestInit | undefined, number, string]> = [
      [base + tampered, undefined, 403, 'link_invalid'],
      [base + new LinkSigner(['another-secret-that-is-32-chars-long!']).sign(claims, 60).token, undefined, 403, 'link_invalid'],
      [base + new LinkSigner([TEST_URL_SECRET]).sign(claims, 60, Math.floor(Date.now() / 1000) - 120).token, undefined, 403, 'link_expired'],
      [base + 'garbage', undefined, 403, 'link_malformed'],
      [url!, { method: 'PUT', body: 'x' }, 405, 'method_not_allowed'],
    ];
    for (const [u, init, status, code] of cases) {
      const res = await fetch(u, init);
      expect(res.status, u).toBe(status);
      const body = (await res.json()) as { error: { code: string }; requestId: string };
      expect(body.error.code).toBe(code);
      expect(body.requestId).toBe(res.headers.get('x-request-id'));
    }
  });

  it('never reaches an instance outside the study a link was issued for', async () => {
    // A correctly signed link whose study is not the instance's own: the PACS lookup is scoped by study.
    const forged = new LinkSigner([TEST_URL_SECRET]).sign({ p: 'instance', m: 'GET', st: small[0]!.studyUid, se: large.seriesUid, so: large.sopUid }, 60).token;
    const res = await fetch(`${gw.url}/v1/instances/${forged}`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('instance_not_found');
  });

  it('answers authorized:false for a study the PACS does not hold', async () => {
    const answer = await access(newUid());
    expect(answer).toMatchObject({ authorized: false, urls: [] });
    expect(answer.error).toMatch(/not found/);
  });

  it('records studyId ↔ StudyInstanceUID durably under DATA_DIR', async () => {
    const event = studyAccessEvent(small[0]!.studyUid);
    await (await gw.send(event)).json();
    const db = new Database(path.join(gw.dataDir, 'gateway.sqlite'), { readonly: true });
    const row = db.prepare('SELECT study_instance_uid AS uid FROM studies WHERE study_id = ?').get(event.data.studyId) as { uid: string };
    db.close();
    expect(row.uid).toBe(small[0]!.studyUid);
  });

  it('follows QIDO paging when the page is smaller than the study', async () => {
    const paged = await startGateway(orthanc, { PACS_FLAVOR: flavor, QIDO_PAGE_SIZE: '2', STUDY_CACHE_SECONDS: '0' });
    try {
      const answer = await access(small[0]!.studyUid, paged);
      expect(new Set(answer.urls.map(sopOf))).toEqual(new Set(small.map((f) => f.sopUid)));
    } finally {
      await paged.stop();
    }
  });
});

describe('an Orthanc that caps query results (LimitFindInstances)', () => {
  let capped: TestOrthanc;
  beforeAll(async () => {
    capped = await startOrthanc({ extra: { LimitFindInstances: 3, LimitFindResults: 3 } });
    for (const f of small) await capped.upload(f.path);
  });
  afterAll(async () => {
    await capped?.stop();
  });

  it('is refused with the reason on the DICOMweb path, never answered with part of the study', async () => {
    const g = await startGateway(capped, { PACS_FLAVOR: 'dicomweb' });
    try {
      const answer = await access(small[0]!.studyUid, g);
      expect(answer).toMatchObject({ authorized: false, urls: [] });
      expect(answer.error).toMatch(/listed \d+ of the study's 9 instances/);
    } finally {
      await g.stop();
    }
  });

  it('is listed in full on the Orthanc path, whose REST listing is not capped', async () => {
    const g = await startGateway(capped, { PACS_FLAVOR: 'orthanc' });
    try {
      const answer = await access(small[0]!.studyUid, g);
      expect(answer.urls).toHaveLength(small.length);
    } finally {
      await g.stop();
    }
  });
});

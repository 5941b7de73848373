import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LinkSigner } from '../src/links/link-signer.js';
import { AuditTrail } from '../src/observability/audit-trail.js';
import { buildLargeFixture, buildStudyFixtures, newUid, type Fixture } from './support/fixtures.js';
import { hex32, startGateway, studyAccessEvent, TEST_URL_SECRET, type RunningGateway } from './support/gateway.js';
import { freePort, startOrthanc, type TestOrthanc } from './support/orthanc.js';

/**
 * Secondary capture uploads end to end: secondary_capture.access_requested against a real Orthanc, then
 * PUTs of real (dcmtk-made) DICOM through the gateway's upload links into that Orthanc and a second one,
 * compared byte for byte with what each Orthanc stored.
 */
const execFileAsync = promisify(execFile);
let pacs: TestOrthanc;
let archive: TestOrthanc;
let gw: RunningGateway;
let fixtures: Fixture[];
let studyUid: string;
let workDir: string;

interface UploadAnswer {
  stored?: boolean;
  destination?: string;
  sopInstanceUid?: string;
  seriesInstanceUid?: string;
  studyInstanceUid?: string;
  bytes?: number;
  error?: { code: string; message: string };
  requestId?: string;
}

function scEvent(data: { studyInstanceUid: string; seriesInstanceUid?: string; sopInstanceUid?: string }) {
  return { id: `whe_${hex32()}`, type: 'secondary_capture.access_requested', data: { studyId: `stu_${hex32()}`, ...data } };
}

async function uploadLinks(data: Parameters<typeof scEvent>[0], g = gw): Promise<{ authorized: boolean; uploadUrls: string[]; error?: string }> {
  const res = await g.send(scEvent(data));
  expect(res.status).toBe(200);
  return (await res.json()) as { authorized: boolean; uploadUrls: string[]; error?: string };
}

/** The URL for one destination (the `x` claim) among a link set. */
function urlFor(urls: string[], destination: string): string {
  const url = urls.find((u) => claimsOf(u).x === destination);
  if (!url) throw new Error(`no upload link for ${destination}`);
  return url;
}

function claimsOf(url: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(url.split('/').pop()!.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
}

async function put(url: string, body: Buffer | Readable, headers: Record<string, string> = {}): Promise<{ status: number; json: UploadAnswer; headers: Record<string, unknown> }> {
  const res = await request(url, { method: 'PUT', body, headers: { 'content-type': 'application/dicom', ...headers } });
  return { status: res.statusCode, json: (await res.body.json()) as UploadAnswer, headers: res.headers };
}

/** A copy of a fixture with new UIDs (dcmodify keeps the file meta in step). */
async function makeObject(
  uids: { study?: string; series?: string; sop?: string; seriesDescription?: string } = {},
  from = 'explicit-le',
): Promise<{ file: Buffer; study: string; series: string; sop: string }> {
  const src = fixtures.find((f) => f.name === from)!;
  const ids = { study: uids.study ?? studyUid, series: uids.series ?? newUid(), sop: uids.sop ?? newUid() };
  const out = path.join(workDir, `${ids.sop}.dcm`);
  await copyFile(src.path, out);
  const extra = uids.seriesDescription ? ['-m', `(0008,103e)=${uids.seriesDescription}`] : [];
  await execFileAsync('dcmodify', ['-nb', '-m', `(0020,000d)=${ids.study}`, '-m', `(0020,000e)=${ids.series}`, '-m', `(0008,0018)=${ids.sop}`, ...extra, out]);
  const file = await readFile(out);
  await rm(out);
  return { file, ...ids };
}

/** Orthanc ids of the instances holding this SOP Instance UID. */
async function instancesOf(orthanc: TestOrthanc, sopUid: string): Promise<string[]> {
  const res = await fetch(`${orthanc.url}/tools/find`, { method: 'POST', body: JSON.stringify({ Level: 'Instance', Query: { SOPInstanceUID: sopUid } }) });
  return (await res.json()) as string[];
}

/** The archive refuses objects so described, the way hospitals filter with Orthanc's Lua callbacks. */
const REFUSED_DESCRIPTION = 'REFUSE ME';

beforeAll(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'avara-uploads-'));
  const lua = path.join(workDir, 'filter.lua');
  await writeFile(lua, `function ReceivedInstanceFilter(dicom, origin, info)\n  return dicom.SeriesDescription ~= '${REFUSED_DESCRIPTION}'\nend\n`);
  [pacs, archive, fixtures] = await Promise.all([startOrthanc(), startOrthanc({ extra: { LuaScripts: [lua] } }), buildStudyFixtures()]);
  studyUid = fixtures[0]!.studyUid;
  for (const f of fixtures) await pacs.upload(f.path);
  gw = await startGateway(pacs, { STOW_DESTINATIONS: `archive=${archive.dicomwebUrl}` });
});

afterAll(async () => {
  await gw?.stop();
  await Promise.all([pacs?.stop(), archive?.stop()]);
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

describe('secondary_capture.access_requested', () => {
  it('answers one PUT link per destination, bound to the study, series, instance, destination and an expiry', async () => {
    const [series, sop] = [newUid(), newUid()];
    const before = Math.floor(Date.now() / 1000);
    const answer = await uploadLinks({ studyInstanceUid: studyUid, seriesInstanceUid: series, sopInstanceUid: sop });
    expect(answer).toMatchObject({ authorized: true });
    expect(answer).not.toHaveProperty('contentCreatorName');
    expect(answer.uploadUrls).toHaveLength(2);
    for (const url of answer.uploadUrls) expect(url.startsWith(`${gw.url}/v1/uploads/`)).toBe(true);
    expect(answer.uploadUrls.map((u) => claimsOf(u).x)).toEqual(['pacs', 'archive']);
    const claims = claimsOf(answer.uploadUrls[0]!);
    expect(claims).toMatchObject({ p: 'upload', m: 'PUT', st: studyUid, se: series, so: sop });
    expect(claims.exp).toBeGreaterThanOrEqual(before + 900);
    expect(claims.exp).toBeLessThanOrEqual(before + 902);
  });

  it('leaves series and instance unbound when the event does not name them', async () => {
    const answer = await uploadLinks({ studyInstanceUid: studyUid });
    const claims = claimsOf(answer.uploadUrls[0]!);
    expect(claims.st).toBe(studyUid);
    expect(claims).not.toHaveProperty('se');
    expect(claims).not.toHaveProperty('so');
  });

  it('refuses a study the PACS does not hold, and a PACS that cannot be reached, within the deadline', async () => {
    expect(await uploadLinks({ studyInstanceUid: newUid() })).toEqual({ authorized: false, uploadUrls: [], error: 'study not found in the PACS' });
    const down = await startGateway({ dicomwebUrl: `http://127.0.0.1:${await freePort()}/dicom-web` }, { SYNC_DEADLINE_MS: '2000' });
    try {
      const started = Date.now();
      const answer = await uploadLinks({ studyInstanceUid: studyUid }, down);
      expect(Date.now() - started).toBeLessThan(2000);
      expect(answer.authorized).toBe(false);
      expect(answer.uploadUrls).toEqual([]);
      expect(answer.error).toMatch(/PACS unavailable: the PACS could not be reached/);
    } finally {
      await down.stop();
    }
  });

  it('records the link set in the audit trail and the metrics', async () => {
    const event = scEvent({ studyInstanceUid: studyUid });
    await (await gw.send(event)).json();
    const rows = [...new AuditTrail(gw.gateway.db).query({ action: 'upload_links_issued', study: event.data.studyId })];
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ webhookId: event.id, studyInstanceUid: studyUid, detail: { links: 2, destinations: ['pacs', 'archive'] } });
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/avara_links_issued_total\{kind="upload"\} \d+/);
  });
});

describe('PUT /v1/uploads/:token', () => {
  it('stores the object in the PACS byte for byte and answers with its UIDs', async () => {
    const obj = await makeObject();
    const { uploadUrls } = await uploadLinks({ studyInstanceUid: studyUid, seriesInstanceUid: obj.series, sopInstanceUid: obj.sop });
    const res = await put(urlFor(uploadUrls, 'pacs'), obj.file);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      stored: true,
      destination: 'pacs',
      studyInstanceUid: studyUid,
      seriesInstanceUid: obj.series,
      sopInstanceUid: obj.sop,
      sopClassUid: '1.2.840.10008.5.1.4.1.1.7',
      bytes: obj.file.length,
    });
    const [id] = await instancesOf(pacs, obj.sop);
    expect((await pacs.storedFile(id!)).equals(obj.file)).toBe(true);
    expect(await instancesOf(archive, obj.sop)).toEqual([]);
  });

  it('stores the same object in both destinations when the viewer PUTs it to both links', async () => {
    const obj = await makeObject();
    const { uploadUrls } = await uploadLinks({ studyInstanceUid: studyUid });
    const answers = await Promise.all(uploadUrls.map((u) => put(u, obj.file)));
    expect(answers.map((a) => [a.status, a.json.destination])).toEqual([
      [200, 'pacs'],
      [200, 'archive'],
    ]);
    for (const orthanc of [pacs, archive]) {
      const ids = await instancesOf(orthanc, obj.sop);
      expect(ids).toHaveLength(1);
      expect((await orthanc.storedFile(ids[0]!)).equals(obj.file)).toBe(true);
    }
  });

  it('streams every transfer syntax and kind of the fixtures through unchanged', async () => {
    const { uploadUrls } = await uploadLinks({ studyInstanceUid: studyUid });
    for (const f of fixtures) {
      const obj = await makeObject({}, f.name);
      const res = await put(urlFor(uploadUrls, 'pacs'), obj.file);
      expect(res.status, `${f.name}: ${JSON.stringify(res.json)}`).toBe(200);
      const [id] = await instancesOf(pacs, obj.sop);
      expect((await pacs.storedFile(id!)).equals(obj.file), f.name).toBe(true);
    }
  });

  it('keeps one instance when the same object is PUT again (a retry)', async () => {
    const obj = await makeObject();
    const url = urlFor((await uploadLinks({ studyInstanceUid: studyUid, sopInstanceUid: obj.sop })).uploadUrls, 'pacs');
    expect((await put(url, obj.file)).status).toBe(200);
    expect((await put(url, obj.file)).status).toBe(200);
    expect(await instancesOf(pacs, obj.sop)).toHaveLength(1);
  });

  it('makes the new object part of the next study access at once', async () => {
    const first = await (await gw.send(studyAccessEvent(studyUid))).json() as { urls: string[] };
    const obj = await makeObject();
    const { uploadUrls } = await uploadLinks({ studyInstanceUid: studyUid });
    expect((await put(urlFor(uploadUrls, 'pacs'), obj.file)).status).toBe(200);
    const after = await (await gw.send(studyAccessEvent(studyUid))).json() as { urls: string[] };
    expect(after.urls.length).toBe(first.urls.length + 1);
    expect(after.urls.map((u) => claimsOf(u).so)).toContain(obj.sop);
  });

  it('refuses an object of another study, series or instance than the link, and stores nothing', async () => {
    const bound = { series: newUid(), sop: newUid() };
    const { uploadUrls } = await uploadLinks({ studyInstanceUid: studyUid, seriesInstanceUid: bound.series, sopInstanceUid: bound.sop });
    const url = urlFor(uploadUrls, 'pacs');
    const cases: Array<[Awaited<ReturnType<typeof makeObject>>, string]> = [
      [await makeObject({ study: newUid(), series: bound.series, sop: bound.sop }), 'study_mismatch'],
      [await makeObject({ series: newUid(), sop: bound.sop }), 'series_mismatch'],
      [await makeObject({ series: bound.series }), 'sop_mismatch'],
    ];
    for (const [obj, code] of cases) {
      const res = await put(url, obj.file);
      expect(res.status, code).toBe(422);
      expect(res.json.error?.code).toBe(code);
      expect(res.json.requestId).toBe(res.headers['x-request-id']);
      expect(await instancesOf(pacs, obj.sop)).toEqual([]);
    }
  });

  it('refuses what is not DICOM, a truncated file and an invalid SOP Instance UID, and stores nothing', async () => {
    const url = urlFor((await uploadLinks({ studyInstanceUid: studyUid })).uploadUrls, 'pacs');
    const notDicom = await put(url, Buffer.from('{"this": "is not DICOM"}'.repeat(100)));
    expect([notDicom.status, notDicom.json.error?.code]).toEqual([400, 'not_dicom']);

    const short = await put(url, Buffer.from('hello'));
    expect([short.status, short.json.error?.code]).toEqual([400, 'not_dicom']);

    // The whole HTTP body arrives, but the file in it stops inside the pixel data.
    const cut = await makeObject();
    const truncated = await put(url, cut.file.subarray(0, cut.file.length - 100));
    expect([truncated.status, truncated.json.error?.code]).toEqual([400, 'truncated']);
    expect(await instancesOf(pacs, cut.sop)).toEqual([]);

    const headerOnly = await put(url, cut.file.subarray(0, 300));
    expect([headerOnly.status, headerOnly.json.error?.code]).toEqual([400, 'truncated']);

    const badUid = await makeObject({ sop: '1.2.03' });
    const invalid = await put(url, badUid.file);
    expect([invalid.status, invalid.json.error?.code]).toEqual([422, 'invalid_uid']);
  });

  describe('with a size limit', () => {
    let small: RunningGateway;
    let big: Fixture;
    beforeAll(async () => {
      big = await buildLargeFixture({ sizeMiB: 1, studyUid });
      small = await startGateway(pacs, { MAX_UPLOAD_BYTES: String(256 * 1024) });
    });
    afterAll(async () => {
      await small?.stop();
    });

    it('answers 413 from the Content-Length, before reading the body', async () => {
      const url = (await uploadLinks({ studyInstanceUid: studyUid }, small)).uploadUrls[0]!;
      const res = await put(url, await readFile(big.path));
      expect([res.status, res.json.error?.code]).toEqual([413, 'too_large']);
      expect(await instancesOf(pacs, big.sopUid)).toEqual([]);
    });

    it('counts a chunked body as it streams, and aborts the STOW when it goes over', async () => {
      const url = (await uploadLinks({ studyInstanceUid: studyUid }, small)).uploadUrls[0]!;
      const file = await readFile(big.path);
      const chunks = Readable.from((function* () {
        for (let i = 0; i < file.length; i += 16 * 1024) yield file.subarray(i, i + 16 * 1024);
      })());
      const res = await put(url, chunks);
      expect([res.status, res.json.error?.code]).toEqual([413, 'too_large']);
      await new Promise((r) => setTimeout(r, 500));
      expect(await instancesOf(pacs, big.sopUid)).toEqual([]);
    });

    it('accepts a chunked body within the limit (no Content-Length needed)', async () => {
      const obj = await makeObject();
      const url = (await uploadLinks({ studyInstanceUid: studyUid }, small)).uploadUrls[0]!;
      const res = await put(url, Readable.from([obj.file.subarray(0, 1000), obj.file.subarray(1000)]));
      expect(res.status).toBe(200);
      expect(await instancesOf(pacs, obj.sop)).toHaveLength(1);
    });
  });

  it('stores nothing when the body is cut off mid-upload, and audits the attempt', async () => {
    const big = await buildLargeFixture({ sizeMiB: 4, studyUid });
    const file = await readFile(big.path);
    const url = new URL((await uploadLinks({ studyInstanceUid: studyUid })).uploadUrls[0]!);
    await new Promise<void>((resolve) => {
      const req = httpRequest(url, { method: 'PUT', headers: { 'content-length': String(file.length) } });
      req.on('error', () => resolve());
      req.write(file.subarray(0, file.length / 2), () => setTimeout(() => req.destroy(), 200));
    });
    const audit = new AuditTrail(gw.gateway.db);
    await expect.poll(() => [...audit.query({ action: 'upload' })].find((e) => e.sopInstanceUid === big.sopUid), { timeout: 10_000 }).toBeDefined();
    const row = [...audit.query({ action: 'upload' })].find((e) => e.sopInstanceUid === big.sopUid)!;
    expect(row).toMatchObject({ status: 499, detail: { outcome: 'client_gone' } });
    expect(row.bytes).toBeGreaterThan(0);
    expect(row.bytes).toBeLessThan(file.length);
    await new Promise((r) => setTimeout(r, 500));
    expect(await instancesOf(pacs, big.sopUid)).toEqual([]);
  });

  it('answers a clear 5xx when a destination is down or too slow', async () => {
    const deadPort = await freePort();
    const g = await startGateway(pacs, { STOW_DESTINATIONS: `dead=http://127.0.0.1:${deadPort}/dicom-web,slow=${archive.dicomwebUrl}`, PACS_TIMEOUT_MS: '1500' });
    try {
      const obj = await makeObject();
      const { uploadUrls } = await uploadLinks({ studyInstanceUid: studyUid }, g);
      const dead = await put(urlFor(uploadUrls, 'dead'), obj.file);
      expect(dead.status).toBe(502);
      expect(dead.json.error?.code).toBe('pacs_error');
      expect(dead.json.error?.message).toMatch(/could not be reached/);

      archive.pause();
      try {
        const slow = await put(urlFor(uploadUrls, 'slow'), obj.file);
        expect(slow.status).toBe(504);
        expect(slow.json.error?.code).toBe('pacs_timeout');
      } finally {
        archive.resume();
      }
    } finally {
      await g.stop();
    }
  });

  it('answers 502 when the archive does not store the object, even though its STOW-RS says it did', async () => {
    // Orthanc 1.10 + DICOMweb 1.7 answer 200 with the SOP in ReferencedSOPSequence for an instance a
    // ReceivedInstanceFilter refused: the gateway asks QIDO before telling the viewer it is stored.
    const obj = await makeObject({ seriesDescription: REFUSED_DESCRIPTION });
    const { uploadUrls } = await uploadLinks({ studyInstanceUid: studyUid });
    const res = await put(urlFor(uploadUrls, 'archive'), obj.file);
    expect([res.status, res.json.error?.code]).toEqual([502, 'pacs_refused']);
    expect(res.json.error?.message).toMatch(/does not list it/);
    expect(await instancesOf(archive, obj.sop)).toEqual([]);
  });

  it('refuses expired, tampered, foreign, GET-method and download links, and unknown destinations', async () => {
    const obj = await makeObject();
    const signer = new LinkSigner([TEST_URL_SECRET]);
    const claims = { p: 'upload' as const, m: 'PUT' as const, st: studyUid, x: 'pacs' };
    const good = signer.sign(claims, 60).token;
    const [h, p, s] = good.split('.');
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), st: newUid() })).toString('base64url')}.${s}`;
    const cases: Array<[string, string, number, string]> = [
      [signer.sign(claims, 60, Math.floor(Date.now() / 1000) - 120).token, 'PUT', 403, 'link_expired'],
      [tampered, 'PUT', 403, 'link_invalid'],
      [new LinkSigner(['another-secret-that-is-32-chars-long!']).sign(claims, 60).token, 'PUT', 403, 'link_invalid'],
      [signer.sign({ ...claims, m: 'GET' }, 60).token, 'PUT', 405, 'link_wrong_method'],
      [signer.sign({ p: 'instance', m: 'GET', st: studyUid, se: obj.series, so: obj.sop }, 60).token, 'PUT', 403, 'link_wrong_purpose'],
      [signer.sign({ ...claims, x: 'nowhere' }, 60).token, 'PUT', 403, 'destination_unknown'],
      ['not-a-token', 'PUT', 403, 'link_malformed'],
      [good, 'GET', 405, 'method_not_allowed'],
      [good, 'POST', 405, 'method_not_allowed'],
    ];
    for (const [token, method, status, code] of cases) {
      const res = await request(`${gw.url}/v1/uploads/${token}`, { method: method as 'PUT', body: method === 'GET' ? undefined : obj.file });
      const json = (await res.body.json()) as UploadAnswer;
      expect([res.statusCode, json.error?.code], code).toEqual([status, code]);
    }
    expect(await instancesOf(pacs, obj.sop)).toEqual([]);
  });

  it('refuses a PUT without a body length (411) and answers CORS preflight for PUT', async () => {
    const url = new URL((await uploadLinks({ studyInstanceUid: studyUid })).uploadUrls[0]!);
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname, () => {
        socket.write(`PUT ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nConnection: close\r\n\r\n`);
      });
      let text = '';
      socket.on('data', (d) => (text += d.toString()));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    expect(raw).toMatch(/^HTTP\/1.1 411/);
    expect(raw).toMatch(/"code":"length_required"/);

    const pre = await fetch(url, { method: 'OPTIONS', headers: { origin: 'https://viewer.avara.example', 'access-control-request-method': 'PUT' } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-methods')).toMatch(/PUT/);
  });

  it('audits each upload with its UIDs, bytes, client and status, and counts it', async () => {
    const obj = await makeObject();
    const event = scEvent({ studyInstanceUid: studyUid });
    const { uploadUrls } = (await (await gw.send(event)).json()) as { uploadUrls: string[] };
    expect((await put(urlFor(uploadUrls, 'pacs'), obj.file)).status).toBe(200);
    const rows = [...new AuditTrail(gw.gateway.db).query({ action: 'upload', study: event.data.studyId })];
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      studyInstanceUid: studyUid,
      seriesInstanceUid: obj.series,
      sopInstanceUid: obj.sop,
      client: '127.0.0.1',
      status: 200,
      bytes: obj.file.length,
      detail: { destination: 'pacs', outcome: 'stored', sopClassUid: '1.2.840.10008.5.1.4.1.1.7' },
    });
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/avara_uploads_total\{outcome="stored"\} \d+/);
    expect(metrics).toMatch(/avara_streamed_bytes_total\{direction="upload"\} \d+/);
  });
});

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LinkSigner, type LinkClaims } from '../src/links/link-signer.js';
import { buildStudyFixtures, newUid, type Fixture } from './support/fixtures.js';
import { startGateway, studyAccessEvent, TEST_URL_SECRET, type RunningGateway } from './support/gateway.js';
import { buildCtObject, buildJpegObject, buildPdfObject, buildVideoObject, MEDIA_PATIENT_NAME, VIDEO_FRAMES, type MediaFixture } from './support/media-fixtures.js';
import { startOrthanc, type TestOrthanc } from './support/orthanc.js';

/**
 * mediaUrls end to end against a real Orthanc: a study holding a PDF (pdf2dcm), another PDF in implicit VR,
 * a photograph (ffmpeg + img2dcm), an H.264 clip stored as an elementary stream, the same clip stored as an
 * MP4 file, an MPEG-2 clip (left out) and a CT image (not media). What the links serve is compared with the
 * files the objects were made from.
 */
const run = promisify(execFile);
let orthanc: TestOrthanc;
let dir: string;
let studyUid: string;
let pdf: MediaFixture;
let pdfImplicit: MediaFixture;
let jpeg: MediaFixture;
let h264: MediaFixture;
let mp4: MediaFixture;
let mpeg2: MediaFixture;
let ct: MediaFixture;
let plainStudyUid: string;
let fixtures: Fixture[];

interface Answer {
  authorized: boolean;
  urls: string[];
  mediaUrls?: Array<{ mimeType: string; url: string; fileName?: string }>;
}

const claimsOf = (url: string) => JSON.parse(Buffer.from(url.split('/').pop()!.split('.')[1]!, 'base64url').toString()) as Record<string, string>;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'avara-media-'));
  studyUid = newUid();
  plainStudyUid = newUid();
  [orthanc, pdf, pdfImplicit, jpeg, h264, mp4, mpeg2, ct, fixtures] = await Promise.all([
    startOrthanc(),
    buildPdfObject(dir, { studyUid, title: 'Outside report', name: 'outside' }),
    buildPdfObject(dir, { studyUid, title: 'Requisition', seriesDescription: 'Scanned requisition', implicitVr: true, name: 'requisition' }),
    buildJpegObject(dir, { studyUid, seriesDescription: 'Wound photo' }),
    buildVideoObject(dir, { studyUid, seriesDescription: 'Endoscopy clip', codec: 'h264', fragments: 3 }),
    buildVideoObject(dir, { studyUid, seriesDescription: 'Endoscopy clip (mp4)', codec: 'mp4', fragments: 2 }),
    buildVideoObject(dir, { studyUid, seriesDescription: 'Old clip', codec: 'mpeg2' }),
    buildCtObject(dir, { studyUid }),
    buildStudyFixtures(),
  ]);
  for (const f of [pdf, pdfImplicit, jpeg, h264, mp4, mpeg2, ct]) await orthanc.upload(f.dicom);
  await orthanc.upload((await buildCtObject(dir, { studyUid: plainStudyUid })).dicom);
  for (const f of fixtures) await orthanc.upload(f.path);
});

afterAll(async () => {
  await orthanc?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.each(['dicomweb', 'orthanc'] as const)('media links against a real Orthanc (%s path)', (flavor) => {
  let gw: RunningGateway;
  let answer: Answer;
  const entry = (sopUid: string) => answer.mediaUrls?.find((m) => claimsOf(m.url).so === sopUid);

  beforeAll(async () => {
    gw = await startGateway(orthanc, { PACS_FLAVOR: flavor });
    const res = await gw.send(studyAccessEvent(studyUid));
    expect(res.status).toBe(200);
    answer = (await res.json()) as Answer;
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it('lists one media entry per PDF, picture and playable video; every object keeps its instance link', () => {
    expect(answer.authorized).toBe(true);
    expect(answer.urls).toHaveLength(7);
    expect(new Set(answer.urls.map((u) => claimsOf(u).so))).toEqual(new Set([pdf, pdfImplicit, jpeg, h264, mp4, mpeg2, ct].map((f) => f.sopUid)));
    const media = answer.mediaUrls ?? [];
    expect(media.map((m) => [claimsOf(m.url).so, m.mimeType, m.fileName]).sort()).toEqual(
      [
        [pdf.sopUid, 'application/pdf', 'Outside report.pdf'],
        [pdfImplicit.sopUid, 'application/pdf', 'Scanned requisition.pdf'],
        [jpeg.sopUid, 'image/jpeg', 'Wound photo.jpg'],
        [h264.sopUid, 'video/mp4', 'Endoscopy clip.mp4'],
        [mp4.sopUid, 'video/mp4', 'Endoscopy clip (mp4).mp4'],
      ].sort(),
    );
    for (const m of media) {
      expect(m.url.startsWith(`${gw.url}/v1/media/`)).toBe(true);
      expect(m.fileName).not.toMatch(/Mediapatient|Secret/);
      expect(claimsOf(m.url)).toMatchObject({ p: 'media', m: 'GET', st: studyUid });
    }
    expect(entry(mpeg2.sopUid)).toBeUndefined(); // MPEG-2: browsers cannot play it
    expect(entry(ct.sopUid)).toBeUndefined();
  });

  it('serves the PDF byte for byte, pad byte removed, inline', async () => {
    for (const f of [pdf, pdfImplicit]) {
      const res = await fetch(entry(f.sopUid)!.url);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/pdf');
      expect(res.headers.get('content-disposition')).toMatch(/^inline; filename=".+\.pdf"$/);
      expect(res.headers.get('accept-ranges')).toBe('bytes');
      const body = Buffer.from(await res.arrayBuffer());
      expect(Number(res.headers.get('content-length'))).toBe(f.original.length);
      expect(f.original.length % 2).toBe(1); // the DICOM value was padded
      expect(body.equals(f.original)).toBe(true);
    }
  });

  it('answers Range requests and HEAD on the PDF with the exact bytes', async () => {
    const { url } = entry(pdf.sopUid)!;
    const total = pdf.original.length;
    const part = await fetch(url, { headers: { range: 'bytes=100-199' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 100-199/${total}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(pdf.original.subarray(100, 200))).toBe(true);
    const tail = await fetch(url, { headers: { range: 'bytes=-7' } });
    expect(tail.status).toBe(206);
    expect(Buffer.from(await tail.arrayBuffer()).toString('latin1')).toBe(pdf.original.subarray(total - 7).toString('latin1'));
    const outside = await fetch(url, { headers: { range: `bytes=${total}-` } });
    expect(outside.status).toBe(416);
    await outside.arrayBuffer();
    const head = await fetch(url, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get('content-length'))).toBe(total);
  });

  it('serves the picture as the JPEG it was made from', async () => {
    const res = await fetch(entry(jpeg.sopUid)!.url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/jpeg');
    expect(res.headers.get('content-disposition')).toBe('inline; filename="Wound photo.jpg"');
    const body = Buffer.from(await res.arrayBuffer());
    expect(Number(res.headers.get('content-length'))).toBe(body.length);
    expect(body.equals(jpeg.original)).toBe(true);
  });

  it('re-wraps the H.264 elementary stream into an MP4 that ffprobe reads frame by frame', async () => {
    const res = await fetch(entry(h264.sopUid)!.url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('video/mp4');
    expect(res.headers.get('content-disposition')).toBe('inline; filename="Endoscopy clip.mp4"');
    const body = Buffer.from(await res.arrayBuffer());
    expect(body.subarray(4, 8).toString('latin1')).toBe('ftyp');
    const file = path.join(dir, `served-${flavor}.mp4`);
    writeFileSync(file, body);
    const { stdout } = await run('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=codec_name,width,height,nb_read_frames', '-of', 'json', file]);
    const stream = (JSON.parse(stdout) as { streams: Array<Record<string, unknown>> }).streams[0];
    expect(stream).toMatchObject({ codec_name: 'h264', width: 320, height: 240, nb_read_frames: String(VIDEO_FRAMES) });
    // Decoded pictures, in display order, are those of the original stream.
    const frames = async (input: string) => (await run('ffmpeg', ['-v', 'error', '-i', input, '-f', 'framemd5', '-'])).stdout.split('\n').filter((l) => /^\d/.test(l)).map((l) => l.split(',').pop()!.trim());
    const raw = path.join(dir, 'original.h264');
    writeFileSync(raw, h264.original);
    expect(await frames(file)).toEqual(await frames(raw));
  });

  it('serves a stored MP4 file as it is, with its length and Range', async () => {
    const { url } = entry(mp4.sopUid)!;
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('video/mp4');
    const body = Buffer.from(await res.arrayBuffer());
    expect(Number(res.headers.get('content-length'))).toBe(mp4.original.length);
    expect(body.equals(mp4.original)).toBe(true);
    const part = await fetch(url, { headers: { range: 'bytes=0-7' } });
    expect(part.status).toBe(206);
    expect(Buffer.from(await part.arrayBuffer()).equals(mp4.original.subarray(0, 8))).toBe(true);
  });

  it('answers CORS preflight on media links', async () => {
    const { url } = entry(pdf.sopUid)!;
    const pre = await fetch(url, { method: 'OPTIONS', headers: { origin: 'https://viewer.avara.example', 'access-control-request-method': 'GET' } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('*');
    const res = await fetch(url, { headers: { origin: 'https://viewer.avara.example' } });
    expect(res.headers.get('access-control-expose-headers')).toMatch(/Content-Disposition/);
    await res.arrayBuffer();
  });

  it('refuses tampered, foreign, expired, wrong-purpose and wrong-method links', async () => {
    const { url } = entry(pdf.sopUid)!;
    const base = `${gw.url}/v1/media/`;
    const token = url.split('/').pop()!;
    const [h, p, s] = token.split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
    const signer = new LinkSigner([TEST_URL_SECRET]);
    const now = Math.floor(Date.now() / 1000);
    const { exp: _exp, iat: _iat, ...rest } = claims;
    const fresh = rest as unknown as LinkClaims;
    const cases: Array<[string, RequestInit | undefined, number, string]> = [
      [base + `${h}.${Buffer.from(JSON.stringify({ ...claims, so: jpeg.sopUid })).toString('base64url')}.${s}`, undefined, 403, 'link_invalid'],
      [base + new LinkSigner(['another-secret-that-is-32-chars-long!']).sign(fresh, 60).token, undefined, 403, 'link_invalid'],
      [base + signer.sign(fresh, 60, now - 120).token, undefined, 403, 'link_expired'],
      [base + signer.sign({ ...fresh, p: 'instance' }, 60).token, undefined, 403, 'link_wrong_purpose'],
      [answer.urls[0]!.replace('/v1/instances/', '/v1/media/'), undefined, 403, 'link_wrong_purpose'],
      [base + 'garbage', undefined, 403, 'link_malformed'],
      [url, { method: 'PUT', body: 'x' }, 405, 'method_not_allowed'],
      // Correctly signed, but the object is not what the link says: a CT image is no PDF.
      [base + signer.sign({ p: 'media', m: 'GET', st: studyUid, se: ct.seriesUid, so: ct.sopUid, x: 'pdf' }, 60).token, undefined, 422, 'media_unsupported'],
      // Correctly signed for another study than the object's: the PACS lookup is scoped by study.
      [base + signer.sign({ p: 'media', m: 'GET', st: plainStudyUid, se: pdf.seriesUid, so: pdf.sopUid, x: 'pdf' }, 60).token, undefined, 404, 'media_not_found'],
    ];
    for (const [u, init, status, code] of cases) {
      const res = await fetch(u, init);
      expect(res.status, `${code} ${u}`).toBe(status);
      const body = (await res.json()) as { error: { code: string }; requestId: string };
      expect(body.error.code).toBe(code);
      expect(body.requestId).toBe(res.headers.get('x-request-id'));
    }
  });

  it('audits each media download and counts its bytes', async () => {
    const { url } = entry(jpeg.sopUid)!;
    await (await fetch(url)).arrayBuffer();
    const events = [...gw.gateway.audit.query({ study: studyUid, action: 'media_download' })];
    const last = events.filter((e) => e.sopInstanceUid === jpeg.sopUid && e.status === 200).pop();
    expect(last).toMatchObject({ studyInstanceUid: studyUid, seriesInstanceUid: jpeg.seriesUid, bytes: jpeg.original.length });
    expect(JSON.stringify(events)).not.toContain(MEDIA_PATIENT_NAME);
    const metrics = await gw.gateway.metrics.registry.getSingleMetricAsString('avara_streamed_bytes_total');
    expect(metrics).toMatch(/direction="media"\} [1-9]/);
  });

  it('has no mediaUrls for a study without media', async () => {
    const res = await gw.send(studyAccessEvent(plainStudyUid));
    const plain = (await res.json()) as Answer;
    expect(plain.authorized).toBe(true);
    expect(plain.urls).toHaveLength(1);
    expect(plain.mediaUrls ?? []).toEqual([]);
  });

  it('treats a JPEG secondary capture of the fixture study as a picture, and nothing else there', async () => {
    const res = await gw.send(studyAccessEvent(fixtures[0]!.studyUid));
    const fx = (await res.json()) as Answer;
    const jpegFixture = fixtures.find((f) => f.name === 'jpeg-baseline')!;
    expect((fx.mediaUrls ?? []).map((m) => [claimsOf(m.url).so, m.mimeType])).toEqual([[jpegFixture.sopUid, 'image/jpeg']]);
    const body = Buffer.from(await (await fetch(fx.mediaUrls![0]!.url)).arrayBuffer());
    expect([body[0], body[1], body[body.length - 2], body[body.length - 1]]).toEqual([0xff, 0xd8, 0xff, 0xd9]);
  });
});

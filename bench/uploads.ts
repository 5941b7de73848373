import { createReadStream } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { buildLargeFixture, buildStudyFixtures, deriveUid, type Fixture } from '../test/support/fixtures.js';
import type { TestOrthanc } from '../test/support/orthanc.js';

/**
 * Secondary capture uploads: a 200 MB object PUT through the gateway's upload link (gateway → STOW-RS →
 * Orthanc) against a direct STOW-RS of the same file to the same Orthanc, and the gateway's peak RSS
 * meanwhile. Each store is fresh: the instance is deleted from Orthanc before every run (a duplicate
 * would be cheaper for Orthanc, and flatter the second comer). A small instance keeps the study known
 * to the PACS, so the webhook authorizes the upload.
 */
export interface UploadBenchContext {
  orthanc: TestOrthanc;
  startGateway: (env: Record<string, string>) => Promise<{ url: string; peakRssMb(): number; stop(): Promise<void>; send(event: unknown): Promise<Response> }>;
  report(label: string, value: string): void;
}

const SIZE_MIB = 200;
const RUNS = Number(process.env.BENCH_UPLOAD_RUNS ?? 3);

export async function benchUploads(ctx: UploadBenchContext): Promise<void> {
  const { orthanc, report } = ctx;
  const studyUid = deriveUid('bench-uploads/v1');
  const [large, anchors] = await Promise.all([buildLargeFixture({ sizeMiB: SIZE_MIB, studyUid }), buildStudyFixtures({ studyUid })]);
  await orthanc.upload(anchors[0]!.path);

  const gw = await ctx.startGateway({ UPLOAD_URL_TTL_SECONDS: '3600', LOG_LEVEL: 'warn' });
  try {
    const url = await uploadLink(gw, studyUid);
    const direct: number[] = [];
    const through: number[] = [];
    // After one warm-up of each, interleaved and in alternating order, so drift (page cache, disk
    // writeback of the previous 200 MB, Orthanc's index) hits both alike.
    for (let i = 0; i <= RUNS; i++) {
      const run = async (kind: 'direct' | 'gateway') => {
        await forget(orthanc, large.sopUid);
        const s = await timed(() => (kind === 'direct' ? directStow(orthanc, large) : gatewayPut(url, large)));
        if (i > 0) (kind === 'direct' ? direct : through).push(s);
      };
      for (const kind of i % 2 ? (['direct', 'gateway'] as const) : (['gateway', 'direct'] as const)) await run(kind);
    }
    if (process.env.BENCH_VERBOSE) console.log({ direct, through });
    const [d, g] = [median(direct), median(through)];
    const mb = large.sizeBytes / 1e6;
    report(`direct STOW-RS of a ${SIZE_MIB} MiB instance (median of ${RUNS})`, `${d.toFixed(3)} s (${(mb / d).toFixed(0)} MB/s)`);
    report(`gateway upload link PUT of the same instance (median of ${RUNS})`, `${g.toFixed(3)} s (${(mb / g).toFixed(0)} MB/s)`);
    report('  over direct STOW-RS (target ≤ 1.2x)', `${(g / d).toFixed(2)}x`);
    report('  gateway peak RSS during the uploads (target < 200 MB)', `${gw.peakRssMb().toFixed(0)} MB`);
  } finally {
    await gw.stop();
    await forget(orthanc, large.sopUid);
  }
}

async function uploadLink(gw: { send(event: unknown): Promise<Response> }, studyUid: string): Promise<string> {
  const hex = () => randomUUID().replaceAll('-', '');
  const res = await gw.send({ id: `whe_${hex()}`, type: 'secondary_capture.access_requested', data: { studyId: `stu_${hex()}`, studyInstanceUid: studyUid } });
  const body = (await res.json()) as { authorized: boolean; uploadUrls: string[]; error?: string };
  if (!body.authorized || !body.uploadUrls[0]) throw new Error(`no upload link: ${body.error ?? res.status}`);
  return body.uploadUrls[0];
}

async function gatewayPut(url: string, f: Fixture): Promise<void> {
  const res = await request(url, { method: 'PUT', body: createReadStream(f.path), headers: { 'content-type': 'application/dicom', 'content-length': String(f.sizeBytes) } });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`gateway upload: HTTP ${res.statusCode} ${text}`);
}

/** What a well-behaved STOW-RS client does: the file streamed inside multipart/related, with its length. */
async function directStow(orthanc: TestOrthanc, f: Fixture): Promise<void> {
  const boundary = `bench-${randomUUID()}`;
  const head = Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const body = Readable.from(
    (async function* () {
      yield head;
      yield* createReadStream(f.path);
      yield tail;
    })(),
    { objectMode: false },
  );
  const res = await request(`${orthanc.dicomwebUrl}/studies`, {
    method: 'POST',
    body,
    headers: {
      'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}`,
      'content-length': String(head.length + f.sizeBytes + tail.length),
      accept: 'application/dicom+json',
      ...auth(orthanc),
    },
  });
  const text = await res.body.text();
  if (res.statusCode !== 200 || !text.includes(f.sopUid)) throw new Error(`direct STOW-RS: HTTP ${res.statusCode} ${text.slice(0, 200)}`);
}

/** Deletes every Orthanc instance with this SOP Instance UID, so the next store is a fresh one. */
async function forget(orthanc: TestOrthanc, sopUid: string): Promise<void> {
  const res = await request(`${orthanc.url}/tools/find`, { method: 'POST', body: JSON.stringify({ Level: 'Instance', Query: { SOPInstanceUID: sopUid } }), headers: auth(orthanc) });
  for (const id of (await res.body.json()) as string[]) {
    const del = await request(`${orthanc.url}/instances/${id}`, { method: 'DELETE', headers: auth(orthanc) });
    await del.body.dump();
  }
}

function auth(o: TestOrthanc): Record<string, string> {
  return o.username ? { authorization: `Basic ${Buffer.from(`${o.username}:${o.password ?? ''}`).toString('base64')}` } : {};
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await fn();
  return (performance.now() - started) / 1000;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AuditTrail } from '../src/observability/audit-trail.js';
import { buildLargeFixture, type Fixture } from './support/fixtures.js';
import { startGateway, studyAccessEvent, type RunningGateway } from './support/gateway.js';
import { startOrthanc, type TestOrthanc } from './support/orthanc.js';

/**
 * What a client sees when things break during a 100 MiB stream: a PACS that dies mid-stream must abort the
 * client's connection (never a clean, truncated 200), and a client that goes away must end the PACS request.
 */
let large: Fixture;
let orthanc: TestOrthanc | undefined;
let gw: RunningGateway | undefined;

beforeAll(async () => {
  large = await buildLargeFixture({ sizeMiB: 100 });
});
afterEach(async () => {
  await gw?.stop();
  await orthanc?.stop();
  gw = undefined;
  orthanc = undefined;
});

async function linkFor(g: RunningGateway, studyUid: string): Promise<string> {
  const json = (await (await g.send(studyAccessEvent(studyUid))).json()) as { urls: string[] };
  return json.urls[0]!;
}

/** Reads until `bytes` have arrived, then hands back the reader. */
async function readSome(url: string, bytes: number) {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  let got = 0;
  while (got < bytes) {
    const r = await reader.read();
    if (r.done) throw new Error('ended early');
    got += r.value.length;
  }
  return { reader, got, length: Number(res.headers.get('content-length')) };
}

describe.each(['dicomweb', 'orthanc'] as const)('stream failures (%s path)', (flavor) => {
  it('aborts the client connection when the PACS dies mid-stream', async () => {
    orthanc = await startOrthanc();
    await orthanc.upload(large.path);
    gw = await startGateway(orthanc, { PACS_FLAVOR: flavor });
    const { reader, got, length } = await readSome(await linkFor(gw, large.studyUid), 64 * 1024);
    expect(length).toBe(large.sizeBytes);
    orthanc.kill();
    let total = got;
    const outcome = await (async () => {
      for (;;) {
        const r = await reader.read();
        if (r.done) return 'ended cleanly';
        total += r.value.length;
      }
    })().catch(() => 'aborted');
    // Backpressure keeps all but a few MB inside Orthanc, so its death must break the client's stream.
    expect(outcome).toBe('aborted');
    expect(total).toBeLessThan(large.sizeBytes);
  });

  it('ends the PACS request when the client goes away, and keeps serving', async () => {
    orthanc = await startOrthanc();
    await orthanc.upload(large.path);
    gw = await startGateway(orthanc, { PACS_FLAVOR: flavor });
    const url = await linkFor(gw, large.studyUid);
    const { reader } = await readSome(url, 1024 * 1024);
    await reader.cancel();
    // The gateway notices, records a short download, and the next client is served in full.
    const audit = new AuditTrail(gw.gateway.db);
    await expect.poll(() => [...audit.query({ action: 'download' })].length, { timeout: 10_000 }).toBe(1);
    const [aborted] = [...audit.query({ action: 'download' })];
    expect(aborted!.bytes).toBeLessThan(large.sizeBytes);
    expect(aborted!.detail?.error).toBeDefined();
    const again = await fetch(url);
    let bytes = 0;
    for await (const chunk of again.body as unknown as AsyncIterable<Uint8Array>) bytes += chunk.length;
    expect(bytes).toBe(large.sizeBytes);
  });
});

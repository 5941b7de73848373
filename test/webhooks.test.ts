import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { buildStudyFixtures, type Fixture } from './support/fixtures.js';
import { hex32, startGateway, studyAccessEvent, TEST_WEBHOOK_SECRET, type RunningGateway } from './support/gateway.js';
import { freePort, startOrthanc, type TestOrthanc } from './support/orthanc.js';

/** The webhook endpoint over HTTP: signatures, validation, replay, unknown types, PACS down and slow. */
let orthanc: TestOrthanc;
let gw: RunningGateway;
let fixtures: Fixture[];

beforeAll(async () => {
  [orthanc, fixtures] = await Promise.all([startOrthanc(), buildStudyFixtures()]);
  for (const f of fixtures) await orthanc.upload(f.path);
  gw = await startGateway(orthanc);
});
afterAll(async () => {
  await gw?.stop();
  await orthanc?.stop();
});

async function post(body: string, headers: Record<string, string>) {
  const res = await fetch(`${gw.url}/webhooks/avara`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  return { status: res.status, json: (await res.json()) as { error?: { code: string; message: string }; authorized?: boolean } };
}

function signedHeaders(body: string, id = 'msg_' + hex32(), secret = TEST_WEBHOOK_SECRET, at = new Date()) {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(secret).sign(id, at, body),
  };
}

describe('POST /webhooks/avara', () => {
  const body = () => JSON.stringify(studyAccessEvent(fixtures[0]!.studyUid));

  it('accepts a correctly signed event', async () => {
    const b = body();
    const r = await post(b, signedHeaders(b));
    expect(r.status).toBe(200);
    expect(r.json.authorized).toBe(true);
  });

  it('answers 401 with a reason for missing, wrong and stale signatures', async () => {
    const b = body();
    const good = signedHeaders(b);
    const other = `whsec_${Buffer.from('a-completely-different-secret!!').toString('base64')}`;
    const cases: Array<[Record<string, string>, string]> = [
      [{}, 'missing_headers'],
      [{ ...good, 'webhook-signature': '' }, 'missing_headers'],
      [signedHeaders(b, undefined, other), 'bad_signature'],
      [{ ...good, 'webhook-id': 'msg_other' }, 'bad_signature'],
      [signedHeaders(b, undefined, undefined, new Date(Date.now() - 10 * 60_000)), 'stale_timestamp'],
    ];
    for (const [headers, code] of cases) {
      const r = await post(b, headers);
      expect(r.status, code).toBe(401);
      expect(r.json.error?.code).toBe(code);
    }
    // The same signature over a body changed by one byte.
    const changed = b.replace('"study.access_requested"', '"study.access_requested" ');
    expect((await post(changed, good)).json.error?.code).toBe('bad_signature');
  });

  it('answers 400 naming the field for a malformed event, after the signature check', async () => {
    const bad = JSON.stringify({ ...studyAccessEvent('1.2.03'), data: { studyId: 'stu_x', studyInstanceUid: '1.2.03' } });
    const r = await post(bad, signedHeaders(bad));
    expect(r.status).toBe(400);
    expect(r.json.error?.code).toBe('malformed_event');
    expect(r.json.error?.message).toMatch(/data\.studyId/);
    expect(r.json.error?.message).toMatch(/data\.studyInstanceUid/);
    const notJson = '{"id": ';
    expect((await post(notJson, signedHeaders(notJson))).json.error?.code).toBe('malformed_json');
  });

  it('acknowledges and ignores an event type it does not know', async () => {
    const b = JSON.stringify({ id: `whe_${hex32()}`, type: 'study.archived', data: {} });
    const r = await post(b, signedHeaders(b));
    expect(r.status).toBe(202);
  });

  it('gives the same answer to the same webhook id, processing it once', async () => {
    const b = body();
    const headers = signedHeaders(b);
    const [first, again] = await Promise.all([post(b, headers), post(b, headers)]);
    expect(again.json).toEqual(first.json);
    const later = await post(b, signedHeaders(b, headers['webhook-id']));
    expect(later.json).toEqual(first.json);
  });
});

describe('when the PACS is down or slow', () => {
  it('answers authorized:false promptly when nothing listens', async () => {
    const down = await startGateway({ dicomwebUrl: `http://127.0.0.1:${await freePort()}/dicom-web` });
    try {
      const started = Date.now();
      const res = await down.send(studyAccessEvent(fixtures[0]!.studyUid));
      const json = (await res.json()) as { authorized: boolean; urls: string[]; error: string };
      expect(json).toMatchObject({ authorized: false, urls: [] });
      expect(json.error).toMatch(/PACS/);
      expect(Date.now() - started).toBeLessThan(down.config.syncDeadlineMs);
      const ready = await fetch(`${down.url}/readyz`);
      expect(ready.status).toBe(503);
    } finally {
      await down.stop();
    }
  });

  it('answers authorized:false before SYNC_DEADLINE_MS when the PACS hangs, and recovers after', async () => {
    const slow = await startGateway(orthanc, { SYNC_DEADLINE_MS: '1500', STUDY_CACHE_SECONDS: '0' });
    const event = studyAccessEvent(fixtures[0]!.studyUid);
    try {
      orthanc.pause();
      const started = Date.now();
      const res = await slow.send(event);
      const elapsed = Date.now() - started;
      const json = (await res.json()) as { authorized: boolean; error: string };
      expect(json.authorized).toBe(false);
      expect(json.error).toMatch(/deadline|in time/);
      expect(elapsed).toBeLessThan(1500);
      orthanc.resume();
      // A transient failure is not kept: Avara's retry of the same webhook id gets a fresh answer.
      const retry = (await (await slow.send(event)).json()) as { authorized: boolean };
      expect(retry.authorized).toBe(true);
    } finally {
      orthanc.resume();
      await slow.stop();
    }
  });
});

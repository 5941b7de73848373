import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { LinkSigner } from '../../links/link-signer.js';
import { PacsError, type PacsClient, type StudyRecord } from '../../pacs/pacs-client.js';
import type { StudyRegistry } from '../../store/study-registry.js';
import type { SecondaryCaptureAccessRequestedEvent } from '../event-schemas.js';
import { secondaryCaptureHandler, type UploadLinksIssued } from './secondary-capture.handler.js';

const SECRET = 'a-url-signing-secret-of-32-chars!!';
const EVENT: SecondaryCaptureAccessRequestedEvent = {
  id: `whe_${'a'.repeat(32)}`,
  type: 'secondary_capture.access_requested',
  data: { studyId: `stu_${'b'.repeat(32)}`, studyInstanceUid: '2.25.1', seriesInstanceUid: '2.25.2', sopInstanceUid: '2.25.3' },
};

/** A strict fake PACS: findStudy does what the test says; everything else must not be called. */
function fakePacs(findStudy: PacsClient['findStudy']): PacsClient {
  const unused = async (): Promise<never> => {
    throw new Error('not used');
  };
  return { flavor: 'dicomweb', ping: unused, listInstances: unused, openInstance: unused, findStudy };
}

function handler(findStudy: PacsClient['findStudy'], issued: UploadLinksIssued[] = []) {
  const recorded: Array<[string, string]> = [];
  const registry = { record: (id: string, uid: string) => (recorded.push([id, uid]), {}) } as unknown as StudyRegistry;
  const h = secondaryCaptureHandler({
    pacs: fakePacs(findStudy),
    links: new LinkSigner([SECRET]),
    registry,
    destinations: ['pacs', 'research'],
    publicBaseUrl: 'https://gw.example',
    uploadUrlTtlSeconds: 900,
    onLinksIssued: (i) => issued.push(i),
  });
  return { run: (deadlineMs = 2000) => h(EVENT, { webhookId: EVENT.id, log: pino({ level: 'silent' }), deadline: Date.now() + deadlineMs }), recorded };
}

describe('secondaryCaptureHandler', () => {
  it('issues one PUT link per destination once the PACS confirms the study', async () => {
    const issued: UploadLinksIssued[] = [];
    const h = handler(async (uid) => (uid === '2.25.1' ? ({} as StudyRecord) : undefined), issued);
    const answer = await h.run();
    expect(answer).toMatchObject({ status: 200, final: true, outcome: 'authorized' });
    const body = answer.body as { authorized: boolean; uploadUrls: string[] };
    expect(body.authorized).toBe(true);
    expect(body.uploadUrls).toHaveLength(2);
    const signer = new LinkSigner([SECRET]);
    const claims = body.uploadUrls.map((u) => {
      expect(u.startsWith('https://gw.example/v1/uploads/')).toBe(true);
      return signer.verify(u.split('/').pop()!, { purpose: 'upload', method: 'PUT' });
    });
    expect(claims.map((c) => c.x)).toEqual(['pacs', 'research']);
    expect(claims[0]).toMatchObject({ st: '2.25.1', se: '2.25.2', so: '2.25.3', sid: EVENT.data.studyId });
    expect(issued).toEqual([expect.objectContaining({ studyUid: '2.25.1', destinations: ['pacs', 'research'] })]);
    expect(h.recorded).toEqual([[EVENT.data.studyId, '2.25.1']]);
  });

  it('refuses, without keeping the answer for replay, an unknown study or a failing PACS', async () => {
    for (const [find, error] of [
      [async () => undefined, 'study not found in the PACS'],
      [async () => Promise.reject(new PacsError('unreachable', 'the PACS could not be reached (ECONNREFUSED)')), 'PACS unavailable: the PACS could not be reached (ECONNREFUSED)'],
    ] as const) {
      const answer = await handler(find).run();
      expect(answer.final).toBe(false);
      expect(answer.body).toEqual({ authorized: false, uploadUrls: [], error });
    }
  });

  it('answers within the deadline when the PACS is slow, and the PACS lookup gets the remaining budget', async () => {
    let signal: AbortSignal | undefined;
    const h = handler((_uid, s) => {
      signal = s;
      return new Promise(() => {});
    });
    const started = Date.now();
    const answer = await h.run(800);
    expect(Date.now() - started).toBeLessThan(800);
    expect(answer.body).toEqual({ authorized: false, uploadUrls: [], error: 'PACS unavailable: the PACS did not answer within the deadline' });
    expect(signal).toBeDefined();
  });
});

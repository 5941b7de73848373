import { describe, expect, it } from 'vitest';
import { AppError } from '../http/errors.js';
import { PacsError } from '../pacs/pacs-client.js';
import type { StowClient, StowResult } from '../pacs/stow.js';
import { storeUpload } from './store-upload.js';
import type { UploadBody } from './upload-body.js';

const OBJECT = { studyInstanceUid: '2.25.1', seriesInstanceUid: '2.25.2', sopInstanceUid: '2.25.3', sopClassUid: '1.2.840.10008.5.1.4.1.1.7', transferSyntaxUid: '1.2.840.10008.1.2.1' };

/** A strict fake destination: store() drains the body and answers `result` (or throws it); holds() answers `listed`. */
function destination(result: StowResult | Error, listed: boolean | 'unknown' = true) {
  const calls: string[] = [];
  const stow = {
    async store(chunks: AsyncIterable<Buffer>, opts: { studyUid?: string; sopInstanceUid?: string }) {
      calls.push(`store ${opts.studyUid} ${opts.sopInstanceUid}`);
      for await (const _ of chunks) {
        // drained like an archive would
      }
      if (result instanceof Error) throw result;
      return result;
    },
    async holds(ids: { sopUid: string }) {
      calls.push(`holds ${ids.sopUid}`);
      return listed === 'unknown' ? undefined : listed;
    },
  } as unknown as StowClient;
  return { stow, calls };
}

function body(opts: { failure?: AppError } = {}): UploadBody {
  const b = {
    done: false,
    failure: opts.failure,
    async *chunks() {
      yield Buffer.from('x');
      b.done = true;
    },
  };
  return b as unknown as UploadBody;
}

const ok = (over: Partial<StowResult> = {}): StowResult => ({ stored: true, status: 200, failures: [], warnings: [], ...over });

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    return JSON.stringify(await p);
  } catch (err) {
    if (err instanceof AppError) return `${err.status} ${err.code}: ${err.message}`;
    throw err;
  }
}

const signal = new AbortController().signal;

describe('storeUpload', () => {
  it('stores to the study path and confirms with QIDO before answering', async () => {
    const d = destination(ok({ warnings: [0xb000] }));
    expect(await storeUpload(d.stow, body(), OBJECT, { signal })).toEqual({ pacsStatus: 200, warnings: ['coercion of data elements (0xB000)'], confirmed: true });
    expect(d.calls).toEqual(['store 2.25.1 2.25.3', 'holds 2.25.3']);
  });

  it('trusts the STOW answer when QIDO cannot be asked, and refuses a "stored" the archive does not list', async () => {
    expect(await storeUpload(destination(ok(), 'unknown').stow, body(), OBJECT, { signal })).toMatchObject({ confirmed: false });
    expect(await outcome(storeUpload(destination(ok(), false).stow, body(), OBJECT, { signal }))).toMatch(/^502 pacs_refused: .*does not list it/);
  });

  it('passes the archive’s refusal on with its reason; a duplicate SOP Instance is a conflict', async () => {
    const refused = destination(ok({ stored: false, status: 409, failures: [{ sopInstanceUid: '2.25.3', reason: 0xc000 }] }));
    expect(await outcome(storeUpload(refused.stow, body(), OBJECT, { signal }))).toBe('502 pacs_refused: the PACS did not store the object (HTTP 409): cannot understand (0xC000)');
    expect(refused.calls).not.toContain('holds 2.25.3');
    const silent = destination(ok({ stored: false, status: 200 }));
    expect(await outcome(storeUpload(silent.stow, body(), OBJECT, { signal }))).toMatch(/^502 pacs_refused: .*not listed as stored/);
    const duplicate = destination(ok({ stored: false, status: 409, failures: [{ reason: 0x0111 }] }));
    expect(await outcome(storeUpload(duplicate.stow, body(), OBJECT, { signal }))).toMatch(/^409 duplicate_instance/);
  });

  it('answers the body’s own failure before the archive’s, and says a timed-out store may have happened', async () => {
    const tooLarge = new AppError(413, 'too_large', 'over the limit');
    const failing = destination(new PacsError('unreachable', 'the request to the PACS was cancelled'));
    expect(await outcome(storeUpload(failing.stow, body({ failure: tooLarge }), OBJECT, { signal }))).toBe('413 too_large: over the limit');
    expect(await outcome(storeUpload(destination(new PacsError('unreachable', 'the PACS could not be reached (ECONNREFUSED)')).stow, body(), OBJECT, { signal }))).toBe(
      '502 pacs_error: the PACS could not be reached (ECONNREFUSED)',
    );
    expect(await outcome(storeUpload(destination(new PacsError('timeout', 'the PACS did not answer in time')).stow, body(), OBJECT, { signal }))).toMatch(
      /^504 pacs_timeout: .*uploading it again is safe$/,
    );
  });
});

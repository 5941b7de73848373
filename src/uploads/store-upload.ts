import { AppError } from '../http/errors.js';
import { describeReason, DUPLICATE_SOP_INSTANCE, type StowClient } from '../pacs/stow.js';
import { pacsToHttp } from '../routes/link-request.js';
import type { UploadBody } from './upload-body.js';
import type { UploadedObject } from './upload-checks.js';

export interface StoredUpload {
  pacsStatus: number;
  /** Warnings the archive attached to the object, in words (e.g. "coercion of data elements (0xB000)"). */
  warnings: string[];
  /** false when the archive could not be asked whether it lists the object (its STOW answer was trusted). */
  confirmed: boolean;
}

/**
 * Streams a checked upload to one destination's STOW-RS and makes sure it is there. Throws an AppError
 * the viewer can show: the body's own failure when the body failed (too large, truncated, cut off), else
 * what the archive said (unreachable, timeout, refusal with its FailureReason, or a "stored" it does not
 * list).
 */
export async function storeUpload(stow: StowClient, body: UploadBody, object: UploadedObject, opts: { length?: number; signal: AbortSignal }): Promise<StoredUpload> {
  let result;
  try {
    result = await stow.store(body.chunks(), { length: opts.length, studyUid: object.studyInstanceUid, sopInstanceUid: object.sopInstanceUid, signal: opts.signal });
  } catch (err) {
    throw body.failure ?? stowFailure(err);
  }
  if (!body.done) throw new AppError(502, 'pacs_error', 'the PACS answered before it had the whole object');
  if (!result.stored) {
    const reasons = result.failures.map((f) => f.reason);
    if (reasons.includes(DUPLICATE_SOP_INSTANCE)) {
      throw new AppError(409, 'duplicate_instance', 'the PACS already holds an object with this SOP Instance UID and did not replace it');
    }
    const why = reasons.length ? reasons.map(describeReason).join('; ') : 'the object is not listed as stored';
    throw new AppError(502, 'pacs_refused', `the PACS did not store the object (HTTP ${result.status}): ${why}`);
  }
  const listed = await stow.holds({ studyUid: object.studyInstanceUid, seriesUid: object.seriesInstanceUid, sopUid: object.sopInstanceUid }, AbortSignal.timeout(10_000));
  if (listed === false) {
    throw new AppError(502, 'pacs_refused', 'the PACS answered that it stored the object, but does not list it: it was filtered out or dropped');
  }
  return { pacsStatus: result.status, warnings: result.warnings.map(describeReason), confirmed: listed === true };
}

/** A STOW that timed out after the whole object was sent may still be stored: say so, and that a retry is safe. */
function stowFailure(err: unknown): unknown {
  const mapped = pacsToHttp(err);
  if (mapped instanceof AppError && mapped.status === 504) {
    return new AppError(504, mapped.code, `${mapped.message}; it may still store the object, and uploading it again is safe`);
  }
  return mapped;
}

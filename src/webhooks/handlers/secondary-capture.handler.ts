import type { LinkSigner } from '../../links/link-signer.js';
import { PacsError, type PacsClient } from '../../pacs/pacs-client.js';
import type { StudyRegistry } from '../../store/study-registry.js';
import { withDeadline, DeadlineError } from '../deadline.js';
import type { SecondaryCaptureAccessRequestedEvent, SecondaryCaptureAccessResponse } from '../event-schemas.js';
import type { EventHandler, HandlerAnswer } from './handler.js';

export interface UploadLinksIssued {
  webhookId: string;
  studyId: string;
  studyUid: string;
  seriesUid?: string;
  sopUid?: string;
  destinations: string[];
  expiresAt: number;
}

export interface SecondaryCaptureDeps {
  pacs: PacsClient;
  links: LinkSigner;
  registry: StudyRegistry;
  /** Storage destination names; one upload link each. */
  destinations: string[];
  publicBaseUrl: string;
  uploadUrlTtlSeconds: number;
  onLinksIssued?: (info: UploadLinksIssued) => void;
}

/**
 * secondary_capture.access_requested: once the PACS confirms it holds the study (QIDO, within the
 * deadline), one signed PUT link per storage destination, bound to the study, the series and instance
 * when the event names them, the destination and an expiry. `contentCreatorName` is never sent: Avara
 * derives it and ignores ours.
 */
export function secondaryCaptureHandler(deps: SecondaryCaptureDeps): EventHandler<SecondaryCaptureAccessRequestedEvent> {
  return async (event, ctx) => {
    const { studyId, studyInstanceUid, seriesInstanceUid, sopInstanceUid } = event.data;
    const { changedFrom } = deps.registry.record(studyId, studyInstanceUid);
    if (changedFrom) ctx.log.warn({ studyId, studyInstanceUid, previousStudyInstanceUid: changedFrom }, 'Avara studyId now names another StudyInstanceUID');

    let study;
    try {
      study = await withDeadline(ctx.deadline, (ms) => deps.pacs.findStudy(studyInstanceUid, AbortSignal.timeout(ms)));
    } catch (err) {
      const reason = err instanceof DeadlineError ? 'the PACS did not answer within the deadline' : err instanceof PacsError ? err.message : 'the PACS lookup failed';
      ctx.log.warn({ studyId, studyInstanceUid, reason, kind: err instanceof PacsError ? err.kind : undefined }, 'upload links not issued: PACS lookup failed');
      return refuse(`PACS unavailable: ${reason}`, 'pacs_error');
    }
    // Not kept for replay: the study may still be arriving in the PACS.
    if (!study) return refuse('study not found in the PACS', 'not_found');

    const now = Math.floor(Date.now() / 1000);
    let expiresAt = now;
    const uploadUrls = deps.destinations.map((name) => {
      const signed = deps.links.sign(
        { p: 'upload', m: 'PUT', st: studyInstanceUid, se: seriesInstanceUid, so: sopInstanceUid, sid: studyId, x: name },
        deps.uploadUrlTtlSeconds,
        now,
      );
      expiresAt = signed.expiresAt;
      return `${deps.publicBaseUrl}/v1/uploads/${signed.token}`;
    });
    deps.onLinksIssued?.({ webhookId: ctx.webhookId, studyId, studyUid: studyInstanceUid, seriesUid: seriesInstanceUid, sopUid: sopInstanceUid, destinations: deps.destinations, expiresAt });
    ctx.log.info({ studyId, studyInstanceUid, destinations: deps.destinations, expiresAt }, 'upload links issued');
    const body: SecondaryCaptureAccessResponse = { authorized: true, uploadUrls };
    return { status: 200, body, final: true, outcome: 'authorized' };
  };
}

function refuse(error: string, outcome: string): HandlerAnswer {
  const body: SecondaryCaptureAccessResponse = { authorized: false, uploadUrls: [], error };
  return { status: 200, body, final: false, outcome };
}

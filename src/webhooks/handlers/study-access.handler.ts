import type { LinkSigner } from '../../links/link-signer.js';
import { PacsError } from '../../pacs/pacs-client.js';
import type { StudyRegistry } from '../../store/study-registry.js';
import type { InstanceLister } from '../../studies/instance-lister.js';
import type { StudyAccessRequestedEvent, StudyAccessResponse } from '../event-schemas.js';
import { withDeadline, DeadlineError } from '../deadline.js';
import type { EventHandler, HandlerAnswer } from './handler.js';

export interface StudyAccessDeps {
  lister: InstanceLister;
  links: LinkSigner;
  registry: StudyRegistry;
  publicBaseUrl: string;
  urlTtlSeconds: number;
  onLinksIssued?: (info: { webhookId: string; studyId: string; studyUid: string; count: number; expiresAt: number }) => void;
}

/** study.access_requested: one signed GET link per instance of the study, answered within the deadline. */
export function studyAccessHandler(deps: StudyAccessDeps): EventHandler<StudyAccessRequestedEvent> {
  return async (event, ctx) => {
    const { studyId, studyInstanceUid } = event.data;
    const { changedFrom } = deps.registry.record(studyId, studyInstanceUid);
    if (changedFrom) ctx.log.warn({ studyId, studyInstanceUid, previousStudyInstanceUid: changedFrom }, 'Avara studyId now names another StudyInstanceUID');

    let refs;
    try {
      refs = await withDeadline(ctx.deadline, (ms) => deps.lister.list(studyInstanceUid, ms));
    } catch (err) {
      const reason = err instanceof DeadlineError ? 'the PACS did not answer within the deadline' : err instanceof PacsError ? err.message : 'the PACS lookup failed';
      ctx.log.warn({ studyId, studyInstanceUid, reason, kind: err instanceof PacsError ? err.kind : undefined }, 'study access not granted: PACS lookup failed');
      return refuse(`PACS unavailable: ${reason}`, false, 'pacs_error');
    }
    if (refs.length === 0) {
      // Not kept for replay: the study may still be arriving in the PACS, and a retry has no side effect to repeat.
      return refuse('study not found in the PACS', false, 'not_found');
    }

    const now = Math.floor(Date.now() / 1000);
    let expiresAt = now;
    const urls = refs.map((r) => {
      const { token, expiresAt: exp } = deps.links.sign(
        { p: 'instance', m: 'GET', st: r.studyUid, se: r.seriesUid, so: r.sopUid, sid: studyId, x: r.pacsId },
        deps.urlTtlSeconds,
        now,
      );
      expiresAt = exp;
      return `${deps.publicBaseUrl}/v1/instances/${token}`;
    });
    deps.onLinksIssued?.({ webhookId: ctx.webhookId, studyId, studyUid: studyInstanceUid, count: urls.length, expiresAt });
    ctx.log.info({ studyId, studyInstanceUid, instances: urls.length, expiresAt }, 'study access granted');
    const body: StudyAccessResponse = { authorized: true, urls };
    return { status: 200, body, final: true, outcome: 'authorized' };
  };
}

function refuse(error: string, final: boolean, outcome: string): HandlerAnswer {
  const body: StudyAccessResponse = { authorized: false, urls: [], error };
  return { status: 200, body, final, outcome };
}

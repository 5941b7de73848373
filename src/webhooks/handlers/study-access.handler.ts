import type { LinkSigner } from '../../links/link-signer.js';
import type { MediaFinder } from '../../media/media-finder.js';
import { MIME_TYPES, mediaClaim } from '../../media/media-kind.js';
import { PacsError, type InstanceRef } from '../../pacs/pacs-client.js';
import type { StudyRegistry } from '../../store/study-registry.js';
import type { InstanceLister } from '../../studies/instance-lister.js';
import type { MediaUrl, StudyAccessRequestedEvent, StudyAccessResponse } from '../event-schemas.js';
import { withDeadline, DeadlineError, ANSWER_MARGIN_MS } from '../deadline.js';
import type { EventHandler, HandlerAnswer, HandlerContext } from './handler.js';

export interface StudyAccessDeps {
  lister: InstanceLister;
  links: LinkSigner;
  registry: StudyRegistry;
  publicBaseUrl: string;
  urlTtlSeconds: number;
  onLinksIssued?: (info: { webhookId: string; studyId: string; studyUid: string; count: number; expiresAt: number; media?: number }) => void;
  /** Finds the study's PDFs, pictures and videos for `mediaUrls`; without it the answer has none. */
  media?: MediaFinder;
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
    const mediaUrls = deps.media ? await mediaLinks(deps, deps.media, refs, studyId, now, ctx) : [];
    deps.onLinksIssued?.({ webhookId: ctx.webhookId, studyId, studyUid: studyInstanceUid, count: urls.length, expiresAt, media: mediaUrls.length });
    ctx.log.info({ studyId, studyInstanceUid, instances: urls.length, media: mediaUrls.length, expiresAt }, 'study access granted');
    const body: StudyAccessResponse = { authorized: true, urls, ...(mediaUrls.length > 0 ? { mediaUrls } : {}) };
    return { status: 200, body, final: true, outcome: 'authorized' };
  };
}

/**
 * One signed media link per PDF, picture or video of the study; the objects keep their `urls` entry too.
 * Media never costs the answer: what is not found before the deadline is left out (and logged).
 */
async function mediaLinks(deps: StudyAccessDeps, finder: MediaFinder, refs: InstanceRef[], studyId: string, now: number, ctx: HandlerContext): Promise<MediaUrl[]> {
  // The finder is stopped a little before the deadline and answers with what it found by then.
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), Math.max(0, ctx.deadline - Date.now() - ANSWER_MARGIN_MS - MEDIA_STOP_MS));
  let found;
  try {
    found = await withDeadline(ctx.deadline, () => finder.find(refs, abort.signal));
  } catch (err) {
    abort.abort();
    ctx.log.warn({ studyId, reason: err instanceof DeadlineError ? 'deadline' : err instanceof Error ? err.message : String(err) }, 'media lookup did not finish; mediaUrls left out');
    return [];
  } finally {
    clearTimeout(timer);
  }
  for (const { ref, reason } of found.excluded) {
    ctx.log.info({ studyId, seriesInstanceUid: ref.seriesUid, sopInstanceUid: ref.sopUid, reason }, 'media object left out of mediaUrls');
  }
  if (found.unresolved > 0) ctx.log.warn({ studyId, unresolved: found.unresolved, lookups: found.lookups }, 'some objects could not be checked for media; left out of mediaUrls');
  else if (found.lookups > 0) ctx.log.debug({ studyId, lookups: found.lookups }, 'media check looked up instances');
  return found.media.map(({ ref, kind, fileName }) => {
    const { token } = deps.links.sign(
      { p: 'media', m: 'GET', st: ref.studyUid, se: ref.seriesUid, so: ref.sopUid, sid: studyId, x: mediaClaim(kind, ref.pacsId) },
      deps.urlTtlSeconds,
      now,
    );
    return { mimeType: MIME_TYPES[kind], url: `${deps.publicBaseUrl}/v1/media/${token}`, fileName };
  });
}

/** How long before the answer margin media lookups stop, for the ones in flight to wind down. */
const MEDIA_STOP_MS = 250;

function refuse(error: string, final: boolean, outcome: string): HandlerAnswer {
  const body: StudyAccessResponse = { authorized: false, urls: [], error };
  return { status: 200, body, final, outcome };
}

import { Router, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { AppError } from '../http/errors.js';
import { sendStream } from '../http/send-stream.js';
import type { LinkClaims, LinkSigner } from '../links/link-signer.js';
import { beginLinkRequest, pacsToHttp } from '../routes/link-request.js';
import { DicomFormatError } from '../uploads/dicom-header.js';
import { TruncatedError } from './byte-reader.js';
import { H264Error } from './h264/h264-syntax.js';
import { MediaFormatError } from './inspectors.js';
import { parseMediaClaim, type MediaKind } from './media-kind.js';
import type { MediaSource } from './media-source.js';

export interface MediaRouteDeps {
  links: LinkSigner;
  source: MediaSource;
  log: Logger;
  onServed?: (info: { claims: LinkClaims; kind: MediaKind; form?: string; bytes: number; status: number; client: string; ms: number; error?: string }) => void;
}

/**
 * GET/HEAD /v1/media/:token — a media object of a study (PDF, JPEG picture, video) as a file a browser
 * opens inline. The link is checked exactly like an instance link (signature, expiry, method, purpose)
 * before the PACS is touched, and the PACS lookup carries all three UIDs, so it reaches only an object
 * of the study the link was issued for.
 */
export function mediaRouter(deps: MediaRouteDeps): Router {
  const router = Router();
  const handler = async (req: Request, res: Response) => {
    const { claims, signal, started } = beginLinkRequest(deps.links, req, res, 'media');
    const media = parseMediaClaim(claims.x);
    if (!media) throw new AppError(403, 'link_invalid', 'the link does not name a media object');
    let result = { bytes: 0, status: 0 };
    let form: string | undefined;
    const served = (status: number, error?: string) =>
      deps.onServed?.({ claims, kind: media.kind, form, bytes: result.bytes, status, client: req.ip ?? '', ms: performance.now() - started, error });
    try {
      const file = await deps.source.open({ studyUid: claims.st, seriesUid: claims.se, sopUid: claims.so, pacsId: media.pacsId }, media.kind, signal);
      form = file.form;
      result = await sendStream(req, res, { ...file, disposition: 'inline' });
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      if (res.headersSent) {
        served(res.statusCode, error);
        deps.log.warn({ studyInstanceUid: claims.st, sopInstanceUid: claims.so, kind: media.kind, error }, 'media stream broke off; client connection aborted');
        return;
      }
      const mapped = toHttp(err);
      served(mapped instanceof AppError ? mapped.status : 500, error);
      if (mapped instanceof AppError && mapped.status === 422) deps.log.warn({ studyInstanceUid: claims.st, sopInstanceUid: claims.so, kind: media.kind, reason: error }, 'media object cannot be served');
      throw mapped;
    }
    served(result.status);
  };
  router.get('/v1/media/:token', handler);
  router.head('/v1/media/:token', handler);
  router.all('/v1/media/:token', (_req, _res) => {
    throw new AppError(405, 'method_not_allowed', 'media links are read with GET or HEAD', { Allow: 'GET, HEAD, OPTIONS' });
  });
  return router;
}

function toHttp(err: unknown): unknown {
  if (err instanceof MediaFormatError || err instanceof H264Error || err instanceof DicomFormatError || err instanceof TruncatedError) {
    return new AppError(422, 'media_unsupported', err.message);
  }
  const mapped = pacsToHttp(err);
  if (mapped instanceof AppError && mapped.code === 'instance_not_found') return new AppError(404, 'media_not_found', 'the PACS no longer holds this object');
  return mapped;
}

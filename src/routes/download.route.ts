import { Router, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { AppError } from '../http/errors.js';
import { sendStream } from '../http/send-stream.js';
import type { LinkSigner, LinkClaims } from '../links/link-signer.js';
import type { PacsClient } from '../pacs/pacs-client.js';
import { beginLinkRequest, pacsToHttp } from './link-request.js';

export interface DownloadDeps {
  links: LinkSigner;
  pacs: PacsClient;
  log: Logger;
  onServed?: (info: { claims: LinkClaims; bytes: number; status: number; client: string; ms: number; error?: string }) => void;
}

/**
 * GET/HEAD /v1/instances/:token — the link is checked before the PACS is touched; the instance then
 * streams from the PACS to the client as Part 10, with backpressure, and the PACS request is aborted if
 * the client goes away.
 */
export function downloadRouter(deps: DownloadDeps): Router {
  const router = Router();
  const handler = async (req: Request, res: Response) => {
    const { claims, signal, started } = beginLinkRequest(deps.links, req, res, 'instance');
    let result = { bytes: 0, status: 0 };
    try {
      const file = await deps.pacs.openInstance({ studyUid: claims.st, seriesUid: claims.se, sopUid: claims.so, pacsId: claims.x }, signal);
      result = await sendStream(req, res, { ...file, contentType: 'application/dicom', fileName: `${claims.so}.dcm`, ranges: file.length !== undefined });
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      const mapped = res.headersSent ? undefined : pacsToHttp(err);
      const status = mapped ? (mapped instanceof AppError ? mapped.status : 500) : res.statusCode;
      deps.onServed?.({ claims, bytes: result.bytes, status, client: req.ip ?? '', ms: performance.now() - started, error });
      if (!mapped) {
        deps.log.warn({ studyInstanceUid: claims.st, sopInstanceUid: claims.so, error }, 'instance stream broke off; client connection aborted');
        return;
      }
      throw mapped;
    }
    deps.onServed?.({ claims, bytes: result.bytes, status: result.status, client: req.ip ?? '', ms: performance.now() - started });
  };
  router.get('/v1/instances/:token', handler);
  router.head('/v1/instances/:token', handler);
  router.all('/v1/instances/:token', (_req, _res) => {
    throw new AppError(405, 'method_not_allowed', 'instance links are read with GET or HEAD', { Allow: 'GET, HEAD, OPTIONS' });
  });
  return router;
}

import { Router, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { AppError } from '../http/errors.js';
import { sendStream } from '../http/send-stream.js';
import { LinkError, type LinkSigner, type LinkClaims } from '../links/link-signer.js';
import { PacsError, type PacsClient } from '../pacs/pacs-client.js';

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
    const claims = checkLink(deps.links, req.params.token as string, 'instance', req.method);
    res.locals.studyInstanceUid = claims.st;
    res.locals.sopInstanceUid = claims.so;
    if (!claims.se || !claims.so) throw new AppError(403, 'link_invalid', 'the link does not name an instance');

    const started = performance.now();
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    let result = { bytes: 0, status: 0 };
    try {
      const file = await deps.pacs.openInstance({ studyUid: claims.st, seriesUid: claims.se, sopUid: claims.so, pacsId: claims.x }, abort.signal);
      result = await sendStream(req, res, { ...file, contentType: 'application/dicom', fileName: `${claims.so}.dcm`, ranges: file.length !== undefined });
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      deps.onServed?.({ claims, bytes: result.bytes, status: res.headersSent ? res.statusCode : 502, client: req.ip ?? '', ms: performance.now() - started, error });
      if (res.headersSent) {
        deps.log.warn({ studyInstanceUid: claims.st, sopInstanceUid: claims.so, error }, 'instance stream broke off; client connection aborted');
        return;
      }
      throw pacsToHttp(err);
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

export function checkLink(links: LinkSigner, token: string, purpose: LinkClaims['p'], method: string): LinkClaims {
  try {
    return links.verify(token, { purpose, method });
  } catch (err) {
    if (err instanceof LinkError) {
      throw new AppError(err.code === 'link_wrong_method' ? 405 : 403, err.code, err.message);
    }
    throw err;
  }
}

export function pacsToHttp(err: unknown): unknown {
  if (!(err instanceof PacsError)) return err;
  switch (err.kind) {
    case 'not_found':
      return new AppError(404, 'instance_not_found', 'the PACS no longer holds this instance');
    case 'timeout':
      return new AppError(504, 'pacs_timeout', err.message);
    case 'unauthorized':
      return new AppError(502, 'pacs_unauthorized', err.message);
    default:
      return new AppError(502, 'pacs_error', err.message);
  }
}

import type { Request, Response } from 'express';
import { AppError } from '../http/errors.js';
import { LinkError, type LinkClaims, type LinkSigner } from '../links/link-signer.js';
import { PacsError } from '../pacs/pacs-client.js';

/**
 * What every link route (instances, media, uploads) does first: check the link before anything touches
 * the PACS, and map link and PACS failures to the answers a viewer gets.
 */
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

/**
 * The start of a download-style link request (instances, media): the link checked for `purpose`, its UIDs
 * put on the request's log line, and a signal that aborts the PACS request when the client goes away.
 */
export function beginLinkRequest(
  links: LinkSigner,
  req: Request,
  res: Response,
  purpose: 'instance' | 'media',
): { claims: LinkClaims & { se: string; so: string }; signal: AbortSignal; started: number } {
  const claims = checkLink(links, req.params.token as string, purpose, req.method);
  res.locals.studyInstanceUid = claims.st;
  res.locals.sopInstanceUid = claims.so;
  if (!claims.se || !claims.so) throw new AppError(403, 'link_invalid', `the link does not name ${purpose === 'media' ? 'a media object' : 'an instance'}`);
  const abort = new AbortController();
  res.on('close', () => abort.abort());
  return { claims: { ...claims, se: claims.se, so: claims.so }, signal: abort.signal, started: performance.now() };
}

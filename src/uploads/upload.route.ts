import { Router, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { AppError } from '../http/errors.js';
import type { LinkClaims, LinkSigner } from '../links/link-signer.js';
import { checkLink } from '../routes/link-request.js';
import type { InstanceLister } from '../studies/instance-lister.js';
import { DEFAULT_DESTINATION, type UploadDestinations } from './destinations.js';
import { UploadBody } from './upload-body.js';
import { checkObject, type UploadedObject } from './upload-checks.js';
import { storeUpload } from './store-upload.js';

export interface UploadServed {
  claims: LinkClaims;
  destination: string;
  object?: UploadedObject;
  bytes: number;
  /** HTTP status answered (499: the client went away before an answer). */
  status: number;
  /** 'stored', or the error code answered. */
  outcome: string;
  client: string;
  ms: number;
  error?: string;
}

export interface UploadDeps {
  links: LinkSigner;
  destinations: UploadDestinations;
  lister: InstanceLister;
  maxUploadBytes: number;
  log: Logger;
  /** Bytes held before the header must be complete. */
  headerLimit?: number;
  /** A client that sends nothing for this long is given up on (408). */
  idleMs?: number;
  onServed?: (info: UploadServed) => void;
}

export interface UploadAnswer {
  stored: true;
  destination: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sopInstanceUid: string;
  sopClassUid: string;
  bytes: number;
  /** Warnings the archive attached to the stored object (e.g. "coercion of data elements (0xB000)"). */
  warnings?: string[];
}

const HEADER_LIMIT = 64 * 1024;
const IDLE_MS = 60_000;
/** After a refusal: how long, and how much, to keep reading so the client sees the answer. */
const DISCARD = { ms: 5_000, bytes: 16 * 1024 * 1024 };

/**
 * PUT /v1/uploads/:token — a secondary capture from Avara's viewer. The link is checked first, then the
 * length, then a bounded prefix of the body must be a Part 10 header for the link's study; only then is
 * the body streamed (prefix + rest, with backpressure) to the destination's STOW-RS. The viewer hears
 * 200 only when the archive lists the object as stored. Mounted before any body parser.
 */
export function uploadRouter(deps: UploadDeps): Router {
  const router = Router();
  router.put('/v1/uploads/:token', async (req: Request, res: Response) => {
    const started = performance.now();
    const claims = checkLink(deps.links, req.params.token as string, 'upload', 'PUT');
    res.locals.studyInstanceUid = claims.st;
    const destination = claims.x ?? DEFAULT_DESTINATION;
    let body: UploadBody | undefined;
    let object: UploadedObject | undefined;
    const served = (status: number, outcome: string, error?: string) => {
      res.locals.bytes = body?.bytes ?? 0;
      deps.onServed?.({ claims, destination, object, bytes: body?.bytes ?? 0, status, outcome, client: req.ip ?? '', ms: performance.now() - started, error });
    };
    try {
      const stow = deps.destinations.get(destination);
      if (!stow) throw new AppError(403, 'destination_unknown', 'this upload link names a storage destination the gateway no longer has');
      const declaredLength = contentLength(req, deps.maxUploadBytes);
      body = new UploadBody(req, { maxBytes: deps.maxUploadBytes, declaredLength, headerLimit: deps.headerLimit ?? HEADER_LIMIT, idleMs: deps.idleMs ?? IDLE_MS });
      object = checkObject(await body.readHeader(), claims);
      res.locals.sopInstanceUid = object.sopInstanceUid;

      const abort = new AbortController();
      res.on('close', () => {
        if (!body?.done) abort.abort();
      });
      const stored = await storeUpload(stow, body, object, { length: declaredLength, signal: abort.signal });
      if (!stored.confirmed) deps.log.warn({ destination, sopInstanceUid: object.sopInstanceUid }, 'could not confirm the stored upload with QIDO; trusted the STOW-RS answer');
      deps.lister.invalidate(object.studyInstanceUid);
      const { studyInstanceUid, seriesInstanceUid, sopInstanceUid, sopClassUid } = object;
      const answer: UploadAnswer = { stored: true, destination, studyInstanceUid, seriesInstanceUid, sopInstanceUid, sopClassUid, bytes: body.bytes };
      if (stored.warnings.length) answer.warnings = stored.warnings;
      deps.log.info({ destination, studyInstanceUid, sopInstanceUid, bytes: body.bytes, pacsStatus: stored.pacsStatus }, 'upload stored');
      res.status(200).json(answer);
      served(200, 'stored');
    } catch (err) {
      if (req.socket.destroyed) {
        // The client went away (or was cut off): there is no one to answer.
        served(499, 'client_gone', err instanceof Error ? err.message : String(err));
        return;
      }
      const status = err instanceof AppError ? err.status : 500;
      served(status, err instanceof AppError ? err.code : 'internal_error', err instanceof Error ? err.message : String(err));
      if (status === 408) res.setHeader('Connection', 'close');
      if (body) body.discardRest(DISCARD);
      else discardUnread(req);
      throw err;
    }
  });
  router.all('/v1/uploads/:token', (_req, _res) => {
    throw new AppError(405, 'method_not_allowed', 'upload links take the object with PUT', { Allow: 'PUT, OPTIONS' });
  });
  return router;
}

/**
 * The client's Content-Length, checked against MAX_UPLOAD_BYTES before any byte is read. A body sent
 * chunked (no Content-Length) is accepted and counted as it arrives; no body at all is refused.
 */
function contentLength(req: Request, max: number): number | undefined {
  const raw = req.get('content-length');
  if (raw === undefined) {
    if (req.get('transfer-encoding')) return undefined;
    throw new AppError(411, 'length_required', 'send the DICOM object as the request body, with a Content-Length');
  }
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n)) throw new AppError(400, 'bad_request', 'Content-Length is not a number');
  if (n > max) throw new AppError(413, 'too_large', `the upload (${n} bytes) exceeds the gateway's limit of ${max} bytes`);
  return n;
}

/** A refusal before the body was touched: read and drop a little of it so the client sees the answer. */
function discardUnread(req: Request): void {
  let seen = 0;
  const stop = setTimeout(() => req.destroy(), DISCARD.ms).unref();
  req.on('data', (c: Buffer) => {
    seen += c.length;
    if (seen > DISCARD.bytes) req.destroy();
  });
  req.on('end', () => clearTimeout(stop));
  req.on('error', () => clearTimeout(stop));
}

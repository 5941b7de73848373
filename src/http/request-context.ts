import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { Logger } from 'pino';

/**
 * A request id for every request (taken from X-Request-Id when sane, else new), echoed as a header, and
 * one log line per request written when the response closes. The path is logged without the link token.
 */
export function requestContext(log: Logger, onFinished?: (info: { route: string; status: number; ms: number }) => void): RequestHandler {
  return (req, res, next) => {
    const incoming = req.get('x-request-id');
    const requestId = incoming && /^[A-Za-z0-9._-]{1,64}$/.test(incoming) ? incoming : randomUUID();
    res.locals.requestId = requestId;
    res.setHeader('X-Request-Id', requestId);
    const started = performance.now();
    res.on('close', () => {
      const ms = Math.round((performance.now() - started) * 10) / 10;
      const route = routeOf(req.path);
      const aborted = !res.writableFinished;
      log.info(
        {
          requestId,
          method: req.method,
          route,
          status: res.statusCode,
          ms,
          aborted: aborted || undefined,
          webhookId: res.locals.webhookId,
          eventType: res.locals.eventType,
          studyInstanceUid: res.locals.studyInstanceUid,
          sopInstanceUid: res.locals.sopInstanceUid,
          bytes: res.locals.bytes,
        },
        'request',
      );
      onFinished?.({ route, status: res.statusCode, ms });
    });
    next();
  };
}

/** "/v1/instances/eyJ…" → "/v1/instances/:token": tokens never reach the logs. */
export function routeOf(path: string): string {
  return path.replace(/^\/v1\/(instances|media|uploads)\/[^/]+/, '/v1/$1/:token');
}

import type { ErrorRequestHandler, Request, Response } from 'express';
import type { Logger } from 'pino';

/** An error whose status and code are meant for the caller. Everything else is reported as a 500. */
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'AppError';
  }
}

export interface ErrorBody {
  error: { code: string; message: string };
  requestId?: string;
}

export function sendError(res: Response, status: number, code: string, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body: ErrorBody = { error: { code, message }, requestId: res.locals.requestId as string | undefined };
  res.status(status).json(body);
}

/** body-parser and express raise errors with `status`/`type`; map them to the same JSON shape. */
function describe(err: unknown): { status: number; code: string; message: string; headers?: Record<string, string> } {
  if (err instanceof AppError) return { status: err.status, code: err.code, message: err.message, headers: err.headers };
  const e = err as { status?: number; statusCode?: number; type?: string; message?: string };
  const status = e.status ?? e.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const code =
      e.type === 'entity.too.large'
        ? 'too_large'
        : e.type === 'request.aborted'
          ? 'request_aborted'
          : e.type === 'entity.parse.failed'
            ? 'malformed_json'
            : 'bad_request';
    return { status, code, message: e.message ?? 'bad request' };
  }
  return { status: 500, code: 'internal_error', message: 'internal error' };
}

export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err, req: Request, res: Response, _next) => {
    const d = describe(err);
    if (d.status >= 500) log.error({ err, path: req.path, requestId: res.locals.requestId }, 'request failed');
    for (const [k, v] of Object.entries(d.headers ?? {})) res.setHeader(k, v);
    sendError(res, d.status, d.code, d.message);
  };
}

export function notFound(): (req: Request, res: Response) => void {
  return (_req, res) => sendError(res, 404, 'not_found', 'no such endpoint');
}

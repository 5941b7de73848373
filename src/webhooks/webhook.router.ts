import express, { Router, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { AppError } from '../http/errors.js';
import type { DeliveryLog } from './delivery-log.js';
import { KNOWN_EVENT_TYPES, describeIssues, knownEvent, type KnownEvent } from './event-schemas.js';
import type { EventHandler, HandlerAnswer } from './handlers/handler.js';
import { readWebhookHeaders, secretKey, verify, WebhookSignatureError } from './signature.js';

export type EventHandlers = {
  [T in KnownEvent['type']]?: EventHandler<Extract<KnownEvent, { type: T }>>;
};

export interface WebhookRouterDeps {
  secrets: string[];
  verifySignatures: boolean;
  deliveries: DeliveryLog;
  handlers: EventHandlers;
  syncDeadlineMs: number;
  log: Logger;
  onEvent?: (info: { type: string; outcome: string; ms: number }) => void;
}

const MAX_WEBHOOK_BYTES = 256 * 1024;

/**
 * POST /webhooks/avara. The body is read raw (the signature covers the exact bytes), verified, then
 * parsed and validated, then dispatched on `type` at most once per webhook id.
 */
export function webhookRouter(deps: WebhookRouterDeps): Router {
  const keys = deps.secrets.map(secretKey);
  const router = Router();
  router.post('/webhooks/avara', express.raw({ type: () => true, limit: MAX_WEBHOOK_BYTES }), async (req: Request, res: Response) => {
    const started = performance.now();
    const deadline = Date.now() + deps.syncDeadlineMs;
    const raw: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const webhookId = authenticate(req, raw, keys, deps.verifySignatures);
    res.locals.webhookId = webhookId;

    const body = parseJson(raw);
    const type = typeof (body as { type?: unknown })?.type === 'string' ? (body as { type: string }).type : undefined;
    if (type !== undefined && !(KNOWN_EVENT_TYPES as readonly string[]).includes(type)) {
      // Avara may add event types: acknowledge so it does not retry, and leave it at that.
      deps.log.info({ webhookId, type }, 'ignored webhook event of an unknown type');
      deps.onEvent?.({ type: 'unknown', outcome: 'ignored', ms: performance.now() - started });
      res.status(202).json({ received: true, ignored: `unknown event type ${type}` });
      return;
    }
    const parsed = knownEvent.safeParse(body);
    if (!parsed.success) {
      deps.onEvent?.({ type: type ?? 'missing', outcome: 'malformed', ms: performance.now() - started });
      throw new AppError(400, 'malformed_event', describeIssues(parsed.error));
    }
    const event = parsed.data;
    res.locals.eventType = event.type;
    const handler = deps.handlers[event.type] as EventHandler<KnownEvent> | undefined;
    if (!handler) throw new AppError(501, 'not_implemented', `this gateway does not handle ${event.type} yet`);

    let outcome = 'replayed';
    const answer = await deps.deliveries.once(webhookId ?? event.id, event.type, async () => {
      const a: HandlerAnswer = await handler(event, { webhookId: webhookId ?? event.id, log: deps.log, deadline });
      outcome = a.outcome;
      return a;
    });
    deps.onEvent?.({ type: event.type, outcome, ms: performance.now() - started });
    if (answer.replayed) res.setHeader('x-replayed', 'true');
    res.status(answer.status).json(answer.body);
  });
  return router;
}

function authenticate(req: Request, raw: Buffer, keys: Buffer[], verifySignatures: boolean): string | undefined {
  if (!verifySignatures) return req.get('webhook-id') || undefined;
  try {
    const headers = readWebhookHeaders((n) => req.get(n));
    verify(keys, headers, raw);
    return headers.id;
  } catch (err) {
    if (err instanceof WebhookSignatureError) throw new AppError(401, err.reason, err.message);
    throw err;
  }
}

function parseJson(raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw new AppError(400, 'malformed_json', 'the webhook body is not JSON');
  }
}

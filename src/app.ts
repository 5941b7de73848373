import express, { type Express } from 'express';
import type { Logger } from 'pino';
import type { Config } from './config/env.js';
import { cors } from './http/cors.js';
import { errorHandler, notFound } from './http/errors.js';
import { requestContext } from './http/request-context.js';
import type { LinkSigner } from './links/link-signer.js';
import type { AuditTrail } from './observability/audit-trail.js';
import type { Metrics } from './observability/metrics.js';
import { metricsRouter } from './routes/metrics.route.js';
import type { PacsClient } from './pacs/pacs-client.js';
import { downloadRouter } from './routes/download.route.js';
import { healthRouter } from './routes/health.route.js';
import type { StudyRegistry } from './store/study-registry.js';
import type { InstanceLister } from './studies/instance-lister.js';
import type { DeliveryLog } from './webhooks/delivery-log.js';
import { studyAccessHandler } from './webhooks/handlers/study-access.handler.js';
import { webhookRouter } from './webhooks/webhook.router.js';

export interface AppDeps {
  config: Config;
  log: Logger;
  pacs: PacsClient;
  links: LinkSigner;
  registry: StudyRegistry;
  deliveries: DeliveryLog;
  lister: InstanceLister;
  metrics: Metrics;
  audit: AuditTrail;
  /** Updates store-derived gauges before a /metrics scrape. */
  refreshMetrics?: () => void;
}

/** The one map of the server: every route the gateway answers is mounted here. */
export function createApp(deps: AppDeps): Express {
  const { config, log } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback, linklocal, uniquelocal');
  app.use(requestContext(log));

  app.use(healthRouter({ pacs: deps.pacs, dataDir: config.dataDir }));
  app.use(metricsRouter(deps.metrics, deps.refreshMetrics));

  // Links are used from Avara's browser viewer. Streaming routes are mounted before any body parser so
  // that request and response bodies stay streams.
  app.use('/v1', cors(config.corsAllowedOrigins));
  app.use(
    downloadRouter({
      links: deps.links,
      pacs: deps.pacs,
      log,
      onServed: ({ claims, bytes, status, client, ms, error }) => {
        deps.metrics.streamedBytes.inc({ direction: 'download' }, bytes);
        deps.metrics.streamedObjects.inc({ direction: 'download', status: String(status) });
        deps.audit.record({
          action: 'download',
          studyId: claims.sid,
          studyInstanceUid: claims.st,
          seriesInstanceUid: claims.se,
          sopInstanceUid: claims.so,
          client,
          status,
          bytes,
          detail: { ms: Math.round(ms), ...(error ? { error } : {}) },
        });
      },
    }),
  );

  // The webhook route reads its own raw body: the signature covers the exact bytes.
  app.use(
    webhookRouter({
      secrets: config.webhookSecrets,
      verifySignatures: config.webhookVerify,
      deliveries: deps.deliveries,
      syncDeadlineMs: config.syncDeadlineMs,
      log,
      onEvent: ({ type, outcome, ms }) => {
        deps.metrics.webhookEvents.inc({ type, outcome });
        deps.metrics.webhookDuration.observe({ type }, ms / 1000);
      },
      handlers: {
        'study.access_requested': studyAccessHandler({
          lister: deps.lister,
          links: deps.links,
          registry: deps.registry,
          publicBaseUrl: config.publicBaseUrl,
          urlTtlSeconds: config.urlTtlSeconds,
          onLinksIssued: ({ webhookId, studyId, studyUid, count, expiresAt }) => {
            deps.metrics.linksIssued.inc({ kind: 'instance' }, count);
            deps.audit.record({ action: 'links_issued', webhookId, studyId, studyInstanceUid: studyUid, detail: { links: count, expiresAt: new Date(expiresAt * 1000).toISOString() } });
          },
        }),
      },
    }),
  );

  app.use(notFound());
  app.use(errorHandler(log));
  return app;
}

import express, { type Express } from 'express';
import type { Logger } from 'pino';
import type { Config } from './config/env.js';
import { cors } from './http/cors.js';
import { errorHandler, notFound } from './http/errors.js';
import { requestContext } from './http/request-context.js';
import type { LinkClaims, LinkSigner } from './links/link-signer.js';
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
import type { ReportJournal } from './reports/journal.js';
import { reportDeliveredHandler } from './webhooks/handlers/report-delivered.handler.js';
import type { UploadDestinations } from './uploads/destinations.js';
import { recordUpload, recordUploadLinks } from './uploads/upload-audit.js';
import { uploadRouter } from './uploads/upload.route.js';
import { secondaryCaptureHandler } from './webhooks/handlers/secondary-capture.handler.js';
import { MediaFinder } from './media/media-finder.js';
import { mediaRouter } from './media/media.route.js';
import { MediaSource } from './media/media-source.js';

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
  /** STOW-RS clients for secondary capture uploads, by destination name. */
  destinations: UploadDestinations;
  /** Updates store-derived gauges before a /metrics scrape. */
  refreshMetrics?: () => void;
  /** The durable report.delivered journal (src/reports): the handler acknowledges once a report is in it. */
  reports: ReportJournal;
  /** Extra fields for /readyz (report job counts); informational, they do not make the gateway unready. */
  readinessExtras?: () => Record<string, unknown>;
}

/** The one map of the server: every route the gateway answers is mounted here. */
export function createApp(deps: AppDeps): Express {
  const { config, log } = deps;
  const app = express();
  app.disable('x-powered-by');
  // Only these proxies' X-Forwarded-For is believed: the audit trail records client addresses.
  app.set('trust proxy', config.trustProxy);
  app.use(requestContext(log));

  app.use(healthRouter({ pacs: deps.pacs, dataDir: config.dataDir, extraChecks: deps.readinessExtras }));
  app.use(metricsRouter(deps.metrics, deps.refreshMetrics));

  // Links are used from Avara's browser viewer. Streaming routes are mounted before any body parser so
  // that request and response bodies stay streams.
  app.use('/v1', cors(config.corsAllowedOrigins));
  app.use(
    downloadRouter({
      links: deps.links,
      pacs: deps.pacs,
      log,
      onServed: ({ claims, bytes, status, client, ms, error }) =>
        recordServed(deps, 'download', { claims, bytes, status, client, detail: { ms: Math.round(ms), ...(error ? { error } : {}) } }),
    }),
  );

  // Media links (mediaUrls): the PDF, JPEG or MP4 inside a DICOM object, streamed as a file a browser opens.
  app.use(
    mediaRouter({
      links: deps.links,
      source: new MediaSource(deps.pacs, log),
      log,
      onServed: ({ claims, kind, form, bytes, status, client, ms, error }) =>
        recordServed(deps, 'media', { claims, bytes, status, client, detail: { kind, ...(form ? { form } : {}), ms: Math.round(ms), ...(error ? { error } : {}) } }),
    }),
  );

  // PUT bodies are DICOM objects of up to MAX_UPLOAD_BYTES: read as a stream, checked, piped to STOW-RS.
  app.use(
    uploadRouter({
      links: deps.links,
      destinations: deps.destinations,
      lister: deps.lister,
      maxUploadBytes: config.maxUploadBytes,
      log,
      onServed: recordUpload(deps.metrics, deps.audit),
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
          media: new MediaFinder(deps.pacs, log),
          onLinksIssued: ({ webhookId, studyId, studyUid, count, expiresAt, media }) => {
            deps.metrics.linksIssued.inc({ kind: 'instance' }, count);
            if (media) deps.metrics.linksIssued.inc({ kind: 'media' }, media);
            deps.audit.record({ action: 'links_issued', webhookId, studyId, studyInstanceUid: studyUid, detail: { links: count, ...(media ? { media } : {}), expiresAt: new Date(expiresAt * 1000).toISOString() } });
          },
        }),
        'report.delivered': reportDeliveredHandler({
          journal: deps.reports,
          onCritical: () => deps.metrics.criticalReports.inc(),
        }),
        'secondary_capture.access_requested': secondaryCaptureHandler({
          pacs: deps.pacs,
          links: deps.links,
          registry: deps.registry,
          destinations: deps.destinations.names,
          publicBaseUrl: config.publicBaseUrl,
          uploadUrlTtlSeconds: config.uploadUrlTtlSeconds,
          onLinksIssued: recordUploadLinks(deps.metrics, deps.audit),
        }),
      },
    }),
  );

  app.use(notFound());
  app.use(errorHandler(log));
  return app;
}

/** A download or media link served: its bytes and status in the metrics, and a row in the audit trail. */
function recordServed(
  deps: Pick<AppDeps, 'metrics' | 'audit'>,
  direction: 'download' | 'media',
  e: { claims: LinkClaims; bytes: number; status: number; client: string; detail: Record<string, unknown> },
): void {
  deps.metrics.streamedBytes.inc({ direction }, e.bytes);
  deps.metrics.streamedObjects.inc({ direction, status: String(e.status) });
  deps.audit.record({
    action: direction === 'download' ? 'download' : 'media_download',
    studyId: e.claims.sid,
    studyInstanceUid: e.claims.st,
    seriesInstanceUid: e.claims.se,
    sopInstanceUid: e.claims.so,
    client: e.client,
    status: e.status,
    bytes: e.bytes,
    detail: e.detail,
  });
}

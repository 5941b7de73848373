import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Every Prometheus metric the gateway exposes at GET /metrics. One instance per gateway (no global
 * registry), so tests can build several gateways in one process.
 */
export class Metrics {
  readonly registry = new Registry();

  readonly webhookEvents = new Counter({
    name: 'avara_webhook_events_total',
    help: 'Webhook events received, by type and outcome',
    labelNames: ['type', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly webhookDuration = new Histogram({
    name: 'avara_webhook_duration_seconds',
    help: 'Time to answer a webhook, by type',
    labelNames: ['type'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly linksIssued = new Counter({
    name: 'avara_links_issued_total',
    help: 'Signed links issued, by kind (instance, media, upload)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly streamedBytes = new Counter({
    name: 'avara_streamed_bytes_total',
    help: 'Bytes streamed through the gateway, by direction (download, media, upload)',
    labelNames: ['direction'] as const,
    registers: [this.registry],
  });
  readonly streamedObjects = new Counter({
    name: 'avara_streamed_objects_total',
    help: 'Objects served or received through links, by direction and HTTP status',
    labelNames: ['direction', 'status'] as const,
    registers: [this.registry],
  });
  readonly uploads = new Counter({
    name: 'avara_uploads_total',
    help: 'Secondary capture uploads, by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly pacsDuration = new Histogram({
    name: 'avara_pacs_request_duration_seconds',
    help: 'Time to the PACS response headers, by method',
    labelNames: ['method'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly pacsErrors = new Counter({
    name: 'avara_pacs_errors_total',
    help: 'Failed PACS requests, by kind (unreachable, timeout, HTTP status class)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly reportJobs = new Gauge({
    name: 'avara_report_jobs',
    help: 'Report jobs in the journal, by state',
    labelNames: ['state'] as const,
    registers: [this.registry],
  });
  readonly oldestPendingReport = new Gauge({
    name: 'avara_report_oldest_pending_age_seconds',
    help: 'Age of the oldest report job not yet filed (0 when none)',
    registers: [this.registry],
  });
  readonly criticalReports = new Counter({
    name: 'avara_critical_reports_total',
    help: 'Reports delivered marked critical',
    registers: [this.registry],
  });
  readonly criticalNotifications = new Gauge({
    name: 'avara_critical_report_notifications',
    help: 'Critical-report notifications to CRITICAL_REPORT_WEBHOOK_URL, by state (pending, sent, failed)',
    labelNames: ['state'] as const,
    registers: [this.registry],
  });

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'avara_' });
  }

  /** Hook for PacsHttp: latency of every PACS request and a count of the failed ones. */
  pacsRequest = (info: { method: string; status?: number; ms: number; failed?: string }): void => {
    this.pacsDuration.observe({ method: info.method }, info.ms / 1000);
    if (info.failed) this.pacsErrors.inc({ kind: info.failed });
    else if (info.status !== undefined && info.status >= 500) this.pacsErrors.inc({ kind: `http_${Math.floor(info.status / 100)}xx` });
  };
}

import type { Logger } from 'pino';
import type { Config } from '../config/env.js';
import type { AuditTrail } from '../observability/audit-trail.js';
import type { Metrics } from '../observability/metrics.js';
import type { PacsHttp } from '../pacs/http.js';
import type { PacsClient } from '../pacs/pacs-client.js';
import { StowClient } from '../pacs/stow.js';
import type { Db } from '../store/database.js';
import type { StudyRegistry } from '../store/study-registry.js';
import type { InstanceLister } from '../studies/instance-lister.js';
import { REPORT_STATES, ReportJournal } from './journal.js';
import { ReportWorker } from './report-worker.js';

export interface ReportPipeline {
  journal: ReportJournal;
  worker: ReportWorker;
  /** Sets the report gauges from the journal (before a /metrics scrape). */
  refreshMetrics(): void;
  /** Report job counts for /readyz. */
  readiness(): Record<string, unknown>;
  /** Resumes pending jobs and starts the worker. */
  start(): Promise<void>;
  /** Stops the worker (running jobs stay pending) and flushes intake. */
  close(): Promise<void>;
}

/** The report.delivered pipeline's parts, built from the configuration: journal (intake) and worker. */
export function createReportPipeline(deps: {
  config: Config;
  db: Db;
  log: Logger;
  pacs: PacsClient;
  http: PacsHttp;
  registry: StudyRegistry;
  lister: InstanceLister;
  audit: AuditTrail;
  metrics: Metrics;
}): ReportPipeline {
  const rc = deps.config.reports;
  const journal = new ReportJournal(deps.db, { downloadWindowMs: rc.downloadWindowMs, notifyCritical: Boolean(rc.criticalWebhook) });
  const worker = new ReportWorker({
    journal,
    registry: deps.registry,
    pacs: deps.pacs,
    stow: new StowClient(deps.config.dicomwebUrl, deps.http),
    lister: deps.lister,
    audit: deps.audit,
    log: deps.log.child({ component: 'reports' }),
    config: rc,
    dataDir: deps.config.dataDir,
  });
  return {
    journal,
    worker,
    refreshMetrics() {
      const c = journal.counts();
      for (const state of REPORT_STATES) deps.metrics.reportJobs.set({ state }, c[state]);
      deps.metrics.oldestPendingReport.set(c.oldestPendingReceivedAt === undefined ? 0 : Math.max(0, (Date.now() - c.oldestPendingReceivedAt) / 1000));
      for (const [state, n] of Object.entries(c.criticalNotifications)) deps.metrics.criticalNotifications.set({ state }, n);
    },
    readiness() {
      const c = journal.counts();
      return {
        reports: {
          pending: c.pending,
          failed: c.failed,
          unmatched: c.unmatched,
          oldestPendingAgeSeconds: c.oldestPendingReceivedAt === undefined ? 0 : Math.round((Date.now() - c.oldestPendingReceivedAt) / 1000),
          criticalNotificationsFailed: c.criticalNotifications.failed,
        },
      };
    },
    start: () => worker.start(),
    async close() {
      await worker.stop();
      journal.close();
    },
  };
}

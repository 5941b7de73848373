import type { Express } from 'express';
import type { Logger } from 'pino';
import { createApp } from './app.js';
import type { Config } from './config/env.js';
import { LinkSigner } from './links/link-signer.js';
import { createPacs } from './pacs/create-pacs.js';
import { PacsHttp } from './pacs/http.js';
import type { PacsClient } from './pacs/pacs-client.js';
import { openDatabase, type Db } from './store/database.js';
import { StudyRegistry } from './store/study-registry.js';
import { InstanceLister } from './studies/instance-lister.js';
import { AuditTrail } from './observability/audit-trail.js';
import { Metrics } from './observability/metrics.js';
import { DeliveryLog } from './webhooks/delivery-log.js';
import { UploadDestinations } from './uploads/destinations.js';
import { createReportPipeline } from './reports/report-pipeline.js';

export interface Gateway {
  app: Express;
  pacs: PacsClient;
  db: Db;
  metrics: Metrics;
  audit: AuditTrail;
  close(): Promise<void>;
}

/** Builds every dependency from the configuration and wires them into the app; close() releases them. */
export async function buildGateway(config: Config, log: Logger): Promise<Gateway> {
  const db = openDatabase(config.dataDir);
  const metrics = new Metrics();
  const audit = new AuditTrail(db);
  const http = new PacsHttp({ auth: config.pacsAuth, timeoutMs: config.pacsTimeoutMs, onRequest: metrics.pacsRequest });
  const pacs = await createPacs(config, http, log);
  const links = new LinkSigner(config.urlSigningSecrets);
  const registry = new StudyRegistry(db);
  const deliveries = new DeliveryLog(db);
  const lister = new InstanceLister(pacs, config.studyCacheSeconds);
  deliveries.pruneOld();
  const pruneTimer = setInterval(() => deliveries.pruneOld(), 3600_000).unref();

  const destinations = new UploadDestinations(config.stowDestinations, { pacsHttp: http, timeoutMs: config.pacsTimeoutMs, onRequest: metrics.pacsRequest });
  // Reports: the journal takes report.delivered; the worker resumes what a crash or restart left pending.
  const reports = createReportPipeline({ config, db, log, pacs, http, registry, lister, audit, metrics });
  const app = createApp({
    config, log, pacs, links, registry, deliveries, lister, metrics, audit, destinations,
    reports: reports.journal,
    refreshMetrics: reports.refreshMetrics,
    readinessExtras: reports.readiness,
  });
  await reports.start();
  return {
    app,
    pacs,
    db,
    metrics,
    audit,
    async close() {
      clearInterval(pruneTimer);
      await reports.close();
      lister.close();
      await destinations.close();
      await http.close();
      db.close();
    },
  };
}

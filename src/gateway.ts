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

  const app = createApp({ config, log, pacs, links, registry, deliveries, lister, metrics, audit });
  return {
    app,
    pacs,
    db,
    metrics,
    audit,
    async close() {
      clearInterval(pruneTimer);
      lister.close();
      await http.close();
      db.close();
    },
  };
}

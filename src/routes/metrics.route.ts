import { Router } from 'express';
import type { Metrics } from '../observability/metrics.js';

/** GET /metrics in Prometheus text format. `refresh` updates gauges read from the store just before a scrape. */
export function metricsRouter(metrics: Metrics, refresh?: () => void): Router {
  const router = Router();
  router.get('/metrics', async (_req, res) => {
    refresh?.();
    res.setHeader('Content-Type', metrics.registry.contentType);
    res.send(await metrics.registry.metrics());
  });
  return router;
}

import { Router } from 'express';
import { accessSync, constants } from 'node:fs';
import type { PacsClient } from '../pacs/pacs-client.js';

export interface HealthDeps {
  pacs: PacsClient;
  dataDir: string;
  extraChecks?: () => Record<string, unknown>;
}

/** /healthz: the process answers. /readyz: the PACS answers and DATA_DIR is writable. */
export function healthRouter(deps: HealthDeps): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const checks: Record<string, { ok: boolean; error?: string; ms?: number }> = {};
    const started = performance.now();
    try {
      await deps.pacs.ping(AbortSignal.timeout(3000));
      checks.pacs = { ok: true, ms: Math.round(performance.now() - started) };
    } catch (err) {
      checks.pacs = { ok: false, error: err instanceof Error ? err.message : String(err) };
    }
    try {
      accessSync(deps.dataDir, constants.W_OK);
      checks.dataDir = { ok: true };
    } catch {
      checks.dataDir = { ok: false, error: 'DATA_DIR is not writable' };
    }
    const ok = Object.values(checks).every((c) => c.ok);
    res.status(ok ? 200 : 503).json({ status: ok ? 'ready' : 'not_ready', pacsFlavor: deps.pacs.flavor, checks, ...deps.extraChecks?.() });
  });
  return router;
}

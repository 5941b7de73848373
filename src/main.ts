import type { Server } from 'node:http';
import { ConfigError, loadConfig } from './config/env.js';
import { buildGateway } from './gateway.js';
import { createLogger } from './observability/logger.js';
import { enableStreamingGc } from './observability/memory.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`avara-gateway: ${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  const log = createLogger(config.logLevel);
  if (!config.webhookVerify) {
    log.warn(
      '!!! AVARA_WEBHOOK_VERIFY=false: webhook signatures are NOT checked (unsafeUnwrap mode). Anyone who can reach this port can obtain study links. Local development only. !!!',
    );
  }
  enableStreamingGc();
  const gateway = await buildGateway(config, log);
  const server: Server = gateway.app.listen(config.port, config.host, () => {
    log.info({ port: config.port, publicBaseUrl: config.publicBaseUrl, dicomwebUrl: config.dicomwebUrl, pacsFlavor: gateway.pacs.flavor }, 'avara-gateway listening');
  });
  server.requestTimeout = 0; // large instances stream for as long as they take; idle sockets still time out
  server.headersTimeout = 30_000;

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, graceMs: config.shutdownGraceMs }, 'shutting down: no new connections, letting streams finish');
    const force = setTimeout(() => {
      log.warn('grace period over: closing remaining connections');
      server.closeAllConnections();
    }, config.shutdownGraceMs).unref();
    server.close(() => {
      clearTimeout(force);
      gateway
        .close()
        .then(() => {
          log.info('stopped');
          process.exit(0);
        })
        .catch((err) => {
          log.error({ err }, 'error while closing');
          process.exit(1);
        });
    });
    server.closeIdleConnections();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err) => {
  process.stderr.write(`avara-gateway: failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});

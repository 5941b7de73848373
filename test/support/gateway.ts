import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Webhook } from 'standardwebhooks';
import { loadConfig, type Config } from '../../src/config/env.js';
import { buildGateway, type Gateway } from '../../src/gateway.js';
import { createLogger } from '../../src/observability/logger.js';
import { freePort, type TestOrthanc } from './orthanc.js';

export const TEST_WEBHOOK_SECRET = `whsec_${Buffer.from('avara-gateway-test-webhook-secret!').toString('base64')}`;
export const TEST_URL_SECRET = 'test-url-signing-secret-0123456789abcdef';

export interface RunningGateway {
  url: string;
  config: Config;
  gateway: Gateway;
  dataDir: string;
  /** POSTs an event signed with the test secret (Standard Webhooks reference implementation). */
  send(event: unknown, opts?: SendOptions): Promise<Response>;
  stop(): Promise<void>;
}

/** The real app, built from environment-style configuration, listening on a free loopback port. */
export async function startGateway(orthanc: Pick<TestOrthanc, 'dicomwebUrl' | 'username' | 'password'>, env: Record<string, string> = {}): Promise<RunningGateway> {
  const dataDir = env.DATA_DIR ?? mkdtempSync(path.join(tmpdir(), 'avara-gw-'));
  // Port first, so PUBLIC_BASE_URL can name it.
  const port = await freePort();
  const config0 = loadConfig({
    PORT: String(port),
    PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
    AVARA_WEBHOOK_SECRET: TEST_WEBHOOK_SECRET,
    URL_SIGNING_SECRET: TEST_URL_SECRET,
    DICOMWEB_URL: orthanc.dicomwebUrl,
    ...(orthanc.username ? { DICOMWEB_USERNAME: orthanc.username, DICOMWEB_PASSWORD: orthanc.password ?? '' } : {}),
    DATA_DIR: dataDir,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...env,
  });
  const log = createLogger(config0.logLevel);
  const gateway = await buildGateway(config0, log);
  const server: Server = await new Promise((resolve) => {
    const s = gateway.app.listen(port, '127.0.0.1', () => resolve(s));
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    config: config0,
    gateway,
    dataDir,
    send: (event, opts) => sendSigned(url, event, opts),
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await gateway.close();
      if (!env.DATA_DIR) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface SendOptions {
  webhookId?: string;
  secret?: string;
  timestamp?: Date;
}

/** POSTs an event to a gateway's /webhooks/avara, signed by the Standard Webhooks reference implementation. */
export function sendSigned(baseUrl: string, event: unknown, opts: SendOptions = {}): Promise<Response> {
  const body = JSON.stringify(event);
  const id = opts.webhookId ?? (event as { id?: string }).id ?? 'msg_test';
  const ts = opts.timestamp ?? new Date();
  return fetch(`${baseUrl}/webhooks/avara`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'webhook-id': id,
      'webhook-timestamp': String(Math.floor(ts.getTime() / 1000)),
      'webhook-signature': new Webhook(opts.secret ?? TEST_WEBHOOK_SECRET).sign(id, ts, body),
    },
    body,
  });
}

export function hex32(): string {
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export function studyAccessEvent(studyInstanceUid: string, studyId = `stu_${hex32()}`) {
  return { id: `whe_${hex32()}`, type: 'study.access_requested', data: { studyId, studyInstanceUid } };
}

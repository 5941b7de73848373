import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { Pool } from 'undici';
import { Webhook } from 'standardwebhooks';
import type { TestOrthanc } from '../test/support/orthanc.js';

/**
 * report.delivered intake: acknowledged events per second, each verified (Standard Webhooks signature),
 * validated and journaled (committed to SQLite with synchronous=FULL before the answer), and the p99 of
 * the acknowledgement's latency, from several concurrent keep-alive clients.
 *
 * The presigned URLs point at a local server that holds every request until the end, so the worker is
 * parked on its few downloads and the figure is the intake's own capacity (download and filing run later
 * and at the PACS's pace, not Avara's).
 */

interface BenchGateway {
  url: string;
  peakRssMb(): number;
  stop(): Promise<void>;
  send(event: unknown): Promise<Response>;
}

export interface ReportsBenchContext {
  orthanc: TestOrthanc;
  startGateway: (env: Record<string, string>) => Promise<BenchGateway>;
  report(label: string, value: string): void;
}

const EVENTS = 5_000;
const WARMUP = 300;
const CLIENTS = 32;
const CONNECTIONS = 16;
const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

const hex32 = () => randomBytes(16).toString('hex');

export async function benchReports(ctx: ReportsBenchContext): Promise<void> {
  const held: ServerResponse[] = [];
  const storage = createServer((_req, res) => void held.push(res));
  await new Promise<void>((r) => storage.listen(0, '127.0.0.1', r));
  const storageHost = `127.0.0.1:${(storage.address() as AddressInfo).port}`;

  const gw = await ctx.startGateway({
    AVARA_WEBHOOK_SECRET: SECRET,
    REPORT_DOWNLOAD_ALLOWED_HOSTS: storageHost,
    REPORT_DOWNLOAD_TIMEOUT_MS: '600000',
  });
  const pool = new Pool(gw.url, { connections: CONNECTIONS, pipelining: 1, keepAliveTimeout: 30_000 });
  try {
    const wh = new Webhook(SECRET);
    const sign = (event: { id: string }) => {
      const body = JSON.stringify(event);
      const now = new Date();
      return {
        body,
        headers: {
          'content-type': 'application/json',
          'webhook-id': event.id,
          'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
          'webhook-signature': wh.sign(event.id, now, body),
        },
      };
    };
    const event = (i: number) => ({
      id: `whe_${hex32()}`,
      type: 'report.delivered',
      data: {
        isCritical: i % 50 === 0,
        presignedUrl: `http://${storageHost}/reports/${i}.pdf?X-Amz-Signature=${hex32()}`,
        reportId: `rep_${hex32()}`,
        studyId: `stu_${hex32()}`,
        plainText: 'Findings: no acute cardiopulmonary abnormality. Impression: normal chest radiograph.',
      },
    });

    // Our own signing secret keeps the client cheap (one keep-alive pool, no fetch); if the harness does
    // not pass AVARA_WEBHOOK_SECRET through, fall back to its sender.
    const probe = sign(event(-1));
    const first = await pool.request({ path: '/webhooks/avara', method: 'POST', headers: probe.headers, body: probe.body });
    await first.body.dump();
    const ownSigning = first.statusCode === 200;

    const send = async (e: ReturnType<typeof event>): Promise<number> => {
      if (!ownSigning) {
        const res = await gw.send(e);
        await res.arrayBuffer();
        return res.status;
      }
      const { body, headers } = sign(e);
      const res = await pool.request({ path: '/webhooks/avara', method: 'POST', headers, body });
      const text = await res.body.text();
      return res.statusCode === 200 && text === '{"success":true}' ? 200 : res.statusCode || 599;
    };

    const run = async (count: number, offset: number) => {
      const events = Array.from({ length: count }, (_, i) => event(offset + i));
      const latencies = new Float64Array(count);
      let failures = 0;
      let next = 0;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: CLIENTS }, async () => {
          for (let i = next++; i < count; i = next++) {
            const t0 = performance.now();
            const status = await send(events[i]!);
            latencies[i] = performance.now() - t0;
            if (status !== 200) failures++;
          }
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      latencies.sort();
      const pct = (p: number) => latencies[Math.min(count - 1, Math.floor((p / 100) * count))]!;
      return { rate: count / seconds, p50: pct(50), p99: pct(99), max: latencies[count - 1]!, failures };
    };

    await run(WARMUP, 0);
    const r = await run(EVENTS, WARMUP);

    // Every acknowledged event is a journaled job: the gauge is read from the journal at scrape time.
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    const m = /avara_report_jobs\{state="pending"\} (\d+)/.exec(metrics);
    const journaled = m ? Number(m[1]) : NaN;

    ctx.report('report.delivered acknowledged/s', `${Math.round(r.rate)} events/s (${EVENTS} events, ${CLIENTS} concurrent clients on ${CONNECTIONS} keep-alive connections${ownSigning ? '' : ', harness sender'})`);
    ctx.report('report.delivered ack latency', `p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, max ${r.max.toFixed(1)} ms`);
    ctx.report('report.delivered journaled', `${journaled} jobs pending for ${EVENTS + WARMUP + 1} acknowledged; ${r.failures} non-200 answers`);
    ctx.report('report.delivered gateway peak RSS', `${Math.round(gw.peakRssMb())} MB`);
  } finally {
    await pool.close();
    await gw.stop();
    for (const res of held) res.destroy();
    storage.closeAllConnections();
    await new Promise((r) => storage.close(r));
  }
}

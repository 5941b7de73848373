import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { freePort, type TestOrthanc } from '../test/support/orthanc.js';
import { sendSigned, TEST_URL_SECRET, TEST_WEBHOOK_SECRET } from '../test/support/gateway.js';

/** The built gateway (dist/) as its own process, so its memory can be read from /proc. */
export interface GatewayProcess {
  url: string;
  pid: number;
  /** Peak resident set size of the gateway process so far (VmHWM), in MB. */
  peakRssMb(): number;
  send(event: unknown): Promise<Response>;
  stop(): Promise<void>;
}

export interface BenchContext {
  orthanc: TestOrthanc;
  startGateway(env: Record<string, string>): Promise<GatewayProcess>;
  report(label: string, value: string): void;
}

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

export async function startGatewayProcess(orthanc: TestOrthanc, env: Record<string, string> = {}): Promise<GatewayProcess> {
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(tmpdir(), 'avara-bench-'));
  const url = `http://127.0.0.1:${port}`;
  // BENCH_NODE_ARGS (e.g. --cpu-prof) go to the gateway's node, for profiling a bench run.
  const nodeArgs = process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, path.join(ROOT, 'dist/src/main.js')], {
    env: {
      PATH: process.env.PATH,
      NODE_ENV: 'production',
      PORT: String(port),
      HOST: '127.0.0.1',
      PUBLIC_BASE_URL: url,
      AVARA_WEBHOOK_SECRET: TEST_WEBHOOK_SECRET,
      URL_SIGNING_SECRET: TEST_URL_SECRET,
      DICOMWEB_URL: orthanc.dicomwebUrl,
      DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) break;
    } catch {
      // not yet
    }
    if (child.exitCode !== null || Date.now() > deadline) throw new Error('the gateway process did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    pid: child.pid!,
    peakRssMb: () => {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
      return kb / 1024;
    },
    send: (event) => sendSigned(url, event),
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** GETs a URL and throws the body away as it arrives; returns bytes and seconds. */
export async function drain(url: string, headers: Record<string, string> = {}): Promise<{ bytes: number; seconds: number }> {
  const started = performance.now();
  const res = await request(url, { headers });
  if (res.statusCode !== 200) throw new Error(`${url}: HTTP ${res.statusCode}`);
  let bytes = 0;
  for await (const chunk of res.body) bytes += (chunk as Buffer).length;
  return { bytes, seconds: (performance.now() - started) / 1000 };
}

export async function timeIt<T>(fn: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  const started = performance.now();
  const value = await fn();
  return { value, seconds: (performance.now() - started) / 1000 };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Runs fn `n` times (after one warm-up) and returns the median seconds. */
export async function medianSeconds(n: number, fn: () => Promise<unknown>): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < n; i++) times.push((await timeIt(fn)).seconds);
  return median(times);
}

export function hex32(): string {
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export const fmt = {
  s: (x: number) => `${x.toFixed(3)} s`,
  x: (x: number) => `${x.toFixed(2)}x`,
  mb: (x: number) => `${x.toFixed(0)} MB`,
};

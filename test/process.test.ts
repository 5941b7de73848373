import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildLargeFixture, buildStudyFixtures, LATIN1_PATIENT_NAME, UTF8_PATIENT_NAME, type Fixture } from './support/fixtures.js';
import { sendSigned, studyAccessEvent, TEST_URL_SECRET, TEST_WEBHOOK_SECRET } from './support/gateway.js';
import { freePort, startOrthanc, type TestOrthanc } from './support/orthanc.js';

/** The gateway as operators run it: a process started from the environment, its logs, its shutdown. */
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

interface Proc {
  child: ChildProcess;
  url: string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

function run(env: Record<string, string>, port?: number): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/main.ts')], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', ...env, ...(port ? { PORT: String(port) } : {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, url: `http://127.0.0.1:${port}`, stdout: () => out, stderr: () => err, exited };
}

async function ready(p: Proc): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${p.url}/healthz`)).ok) return;
    } catch {
      // starting
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`gateway did not start: ${p.stderr()}`);
}

const signed = sendSigned;

let orthanc: TestOrthanc;
let fixtures: Fixture[];
let large: Fixture;
const dirs: string[] = [];
const baseEnv = () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'avara-proc-'));
  dirs.push(dir);
  return { AVARA_WEBHOOK_SECRET: TEST_WEBHOOK_SECRET, URL_SIGNING_SECRET: TEST_URL_SECRET, DICOMWEB_URL: orthanc.dicomwebUrl, DATA_DIR: dir, LOG_LEVEL: 'info' };
};

beforeAll(async () => {
  [orthanc, fixtures, large] = await Promise.all([startOrthanc(), buildStudyFixtures(), buildLargeFixture({ sizeMiB: 100 })]);
  for (const f of [...fixtures, large]) await orthanc.upload(f.path);
});
afterAll(async () => {
  await orthanc?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('configuration at start', () => {
  it('stops with a message naming each bad variable', async () => {
    const p = run({ ...baseEnv(), AVARA_WEBHOOK_SECRET: '', URL_SIGNING_SECRET: 'short', URL_TTL_SECONDS: '999999999', DICOMWEB_URL: 'ftp://pacs' }, await freePort());
    expect(await p.exited).toBe(78);
    for (const name of ['AVARA_WEBHOOK_SECRET', 'URL_SIGNING_SECRET', 'URL_TTL_SECONDS', 'DICOMWEB_URL']) expect(p.stderr()).toContain(name);
  });

  it('refuses unverified webhooks in production, and warns loudly in development', async () => {
    const prod = run({ ...baseEnv(), AVARA_WEBHOOK_VERIFY: 'false', NODE_ENV: 'production' }, await freePort());
    expect(await prod.exited).toBe(78);
    expect(prod.stderr()).toMatch(/AVARA_WEBHOOK_VERIFY.*production/);

    const dev = run({ ...baseEnv(), AVARA_WEBHOOK_VERIFY: 'false', AVARA_WEBHOOK_SECRET: '' }, await freePort());
    await ready(dev);
    expect(dev.stdout()).toMatch(/"level":40.*AVARA_WEBHOOK_VERIFY=false/);
    // unsafeUnwrap mode: an unsigned event is parsed and answered.
    const res = await fetch(`${dev.url}/webhooks/avara`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(studyAccessEvent(fixtures[0]!.studyUid)) });
    expect(((await res.json()) as { authorized: boolean }).authorized).toBe(true);
    dev.child.kill('SIGTERM');
    expect(await dev.exited).toBe(0);
  });
});

describe('logs', () => {
  it('writes one JSON line per request with its request id, ids and UIDs, and no secrets, tokens or patient data', async () => {
    const env = baseEnv();
    const p = run(env, await freePort());
    await ready(p);
    const event = studyAccessEvent(fixtures[0]!.studyUid);
    const res = await signed(p.url, event);
    const requestId = res.headers.get('x-request-id');
    const { urls } = (await res.json()) as { urls: string[] };
    const latin1 = urls.find(Boolean)!;
    const dl = await fetch(latin1, { headers: { 'x-request-id': 'client-chosen-id-1' } });
    await dl.arrayBuffer();
    expect(dl.headers.get('x-request-id')).toBe('client-chosen-id-1');
    p.child.kill('SIGTERM');
    await p.exited;

    const lines = p.stdout().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const requests = lines.filter((l) => l.msg === 'request');
    const hook = requests.find((l) => l.requestId === requestId)!;
    expect(hook).toMatchObject({ method: 'POST', route: '/webhooks/avara', status: 200, webhookId: event.id, eventType: 'study.access_requested' });
    expect(typeof hook.ms).toBe('number');
    const download = requests.find((l) => l.requestId === 'client-chosen-id-1')!;
    expect(download).toMatchObject({ route: '/v1/instances/:token', status: 200, studyInstanceUid: fixtures[0]!.studyUid });

    const all = p.stdout() + p.stderr();
    const token = latin1.split('/').pop()!;
    for (const secret of [token, token.split('.')[2]!, TEST_WEBHOOK_SECRET, TEST_URL_SECRET, 'Müller', 'Yamada', '山田', LATIN1_PATIENT_NAME, UTF8_PATIENT_NAME, 'AVARA-FX-001']) {
      expect(all.includes(secret), `log contains ${secret.slice(0, 12)}`).toBe(false);
    }
  });
});

describe('graceful shutdown', () => {
  it('on SIGTERM stops accepting, lets a stream in flight finish, and exits 0', async () => {
    const port = await freePort();
    const p = run({ ...baseEnv(), SHUTDOWN_GRACE_MS: '30000' }, port);
    await ready(p);
    const { urls } = (await (await signed(p.url, studyAccessEvent(large.studyUid))).json()) as { urls: string[] };
    const res = await fetch(urls[0]!);
    const reader = res.body!.getReader();
    let bytes = (await reader.read()).value!.length;
    p.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    await expect(fetch(`${p.url}/healthz`)).rejects.toThrow();
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      bytes += r.value.length;
    }
    expect(bytes).toBe(large.sizeBytes);
    expect(await p.exited).toBe(0);
    expect(p.stdout()).toMatch(/shutting down/);
  });
});

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import dcmjs from 'dcmjs';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reportSopInstanceUid } from '../src/reports/encapsulated-pdf.js';
import { getJob, retryJob, type ReportJobView, type ReportState } from '../src/reports/journal.js';
import { buildStudyFixtures, DEFAULT_PATIENT_NAME, LATIN1_PATIENT_NAME, UTF8_PATIENT_NAME, type Fixture } from './support/fixtures.js';
import { hex32, sendSigned, startGateway, studyAccessEvent, TEST_URL_SECRET, TEST_WEBHOOK_SECRET, type RunningGateway } from './support/gateway.js';
import { freePort, startOrthanc, type TestOrthanc } from './support/orthanc.js';
import { minimalPdf } from './support/pdf.js';

/**
 * report.delivered end to end: a real Orthanc, a local HTTP server standing in for Avara's presigned PDF
 * URLs, and the gateway both in-process and as a child process that is SIGKILLed between the
 * acknowledgement and the filing.
 */

const REPO = path.resolve(fileURLToPath(new URL('..', import.meta.url)));
const CRITICAL_SECRET = `whsec_${Buffer.from('critical-report-receiver-secret!').toString('base64')}`;
const MAX_BYTES = 64 * 1024;

let orthanc: TestOrthanc;
let fixtures: Fixture[];
let studyUid: string;
let gw: RunningGateway;

// ---- the stand-in for Avara's object storage ------------------------------------------------------

type Route = (req: IncomingMessage, res: ServerResponse, hit: number) => void;
const routes = new Map<string, Route>();
const hits = new Map<string, number>();
let pdfServer: Server;
let pdfHost: string;

function serve(route: string, handler: Route): string {
  routes.set(route, handler);
  // The query stands for a presigned URL's signature: a credential that must never reach a log.
  return `http://${pdfHost}${route}?X-Amz-Signature=SIGSECRET${hex32()}`;
}
const servePdf = (route: string, pdf: Buffer) => serve(route, (_req, res) => res.writeHead(200, { 'content-type': 'application/pdf', 'content-length': pdf.length }).end(pdf));

// ---- the stand-in for the hospital's critical-results receiver -------------------------------------

const criticalCalls: Array<{ headers: Record<string, string>; body: string; status: number }> = [];
let criticalServer: Server;
let criticalUrl: string;
let criticalFailuresLeft = 0;

beforeAll(async () => {
  [orthanc, fixtures] = await Promise.all([startOrthanc(), buildStudyFixtures()]);
  for (const f of fixtures) await orthanc.upload(f.path);
  studyUid = fixtures[0]!.studyUid;

  pdfServer = createServer((req, res) => {
    const route = req.url!.split('?')[0]!;
    const n = (hits.get(route) ?? 0) + 1;
    hits.set(route, n);
    const handler = routes.get(route);
    if (handler) handler(req, res, n);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => pdfServer.listen(0, '127.0.0.1', r));
  pdfHost = `127.0.0.1:${(pdfServer.address() as AddressInfo).port}`;

  criticalServer = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = criticalFailuresLeft-- > 0 ? 500 : 204;
      criticalCalls.push({ headers: req.headers as Record<string, string>, body: Buffer.concat(chunks).toString(), status });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => criticalServer.listen(0, '127.0.0.1', r));
  criticalUrl = `http://127.0.0.1:${(criticalServer.address() as AddressInfo).port}/critical`;

  gw = await startGateway(orthanc, {
    REPORT_DOWNLOAD_ALLOWED_HOSTS: pdfHost,
    REPORT_MAX_BYTES: String(MAX_BYTES),
    REPORT_RETRY_BASE_MS: '50',
    REPORT_RETRY_MAX_MS: '300',
    REPORT_POLL_MS: '100',
    PACS_TIMEOUT_MS: '1500',
    CRITICAL_REPORT_WEBHOOK_URL: criticalUrl,
    CRITICAL_REPORT_WEBHOOK_SECRET: CRITICAL_SECRET,
  });
});

afterAll(async () => {
  await gw?.stop();
  pdfServer?.closeAllConnections();
  pdfServer?.close();
  criticalServer?.close();
  await orthanc?.stop();
});

// ---- helpers ------------------------------------------------------------------------------------

function reportEvent(studyId: string, presignedUrl: string, over: { isCritical?: boolean; plainText?: string; reportId?: string } = {}) {
  return {
    id: `whe_${hex32()}`,
    type: 'report.delivered',
    data: { isCritical: over.isCritical ?? false, presignedUrl, reportId: over.reportId ?? `rep_${hex32()}`, studyId, plainText: over.plainText ?? 'Findings: no acute abnormality.' },
  };
}

/** What study.access_requested records: the Avara studyId that names our study. */
async function knownStudy(g: { send(e: unknown): Promise<Response> } = gw): Promise<string> {
  const studyId = `stu_${hex32()}`;
  const res = await g.send(studyAccessEvent(studyUid, studyId));
  expect(res.status).toBe(200);
  await res.arrayBuffer();
  return studyId;
}

async function deliver(event: ReturnType<typeof reportEvent>, g: { send(e: unknown): Promise<Response> } = gw): Promise<void> {
  const res = await g.send(event);
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ success: true });
}

async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const jobIn = (reportId: string, states: ReportState[], db = gw.gateway.db) =>
  waitFor(`${reportId} to be ${states.join('/')}`, () => {
    const j = getJob(db, reportId);
    return j && states.includes(j.state) ? j : undefined;
  });

async function orthancInstances(sopUid: string): Promise<string[]> {
  const res = await fetch(`${orthanc.url}/tools/find`, { method: 'POST', body: JSON.stringify({ Level: 'Instance', Query: { SOPInstanceUID: sopUid } }) });
  return (await res.json()) as string[];
}

/** The stored Encapsulated PDF in Orthanc, parsed, and the PDF it carries (without the padding byte). */
async function storedReport(orthancId: string) {
  const file = await orthanc.storedFile(orthancId);
  const { dict } = dcmjs.data.DicomMessage.readFile(file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength) as ArrayBuffer);
  const v = (tag: string) => dict[tag]?.Value?.[0];
  const doc = Buffer.from(v('00420011') as ArrayBuffer);
  return { v, pdf: doc.subarray(0, v('00420015') as number) };
}

function dirFiles(dataDir: string, reportId: string) {
  const base = path.join(dataDir, 'reports', reportId);
  return {
    pdf: existsSync(`${base}.pdf`) ? readFileSync(`${base}.pdf`) : undefined,
    json: existsSync(`${base}.json`) ? (JSON.parse(readFileSync(`${base}.json`, 'utf8')) as Record<string, unknown> & { pacs: Record<string, unknown> }) : undefined,
  };
}

async function studyLinkCount(): Promise<number> {
  const res = await gw.send(studyAccessEvent(studyUid));
  return ((await res.json()) as { urls: string[] }).urls.length;
}

// ---- in-process gateway ---------------------------------------------------------------------------

describe('report.delivered against a real Orthanc', () => {
  it('acknowledges, then files the report into its study as an Encapsulated PDF, byte-identical, and into the directory', async () => {
    const studyId = await knownStudy();
    const linksBefore = await studyLinkCount();
    const pdf = minimalPdf({ text: 'Avara report one', odd: true });
    const event = reportEvent(studyId, servePdf('/one.pdf', pdf), { plainText: 'Impression: normal study.' });
    const { reportId } = event.data;
    await deliver(event);

    const job = await jobIn(reportId, ['filed']);
    const sop = reportSopInstanceUid(reportId);
    expect(job).toMatchObject({ studyInstanceUid: studyUid, sopInstanceUid: sop, sinksDone: expect.arrayContaining(['pacs', 'dir']), pdfBytes: pdf.length });

    const ids = await orthancInstances(sop);
    expect(ids).toHaveLength(1);
    const stored = await storedReport(ids[0]!);
    expect(stored.pdf.equals(pdf)).toBe(true);
    expect(stored.v('00080016')).toBe('1.2.840.10008.5.1.4.1.1.104.1');
    expect(stored.v('0020000D')).toBe(studyUid);
    expect(stored.v('00080060')).toBe('DOC');
    expect(stored.v('0008103E')).toMatch(/Avara/);
    expect(stored.v('00420010')).toBeTruthy();
    expect(stored.v('00420012')).toBe('application/pdf');
    // Patient and study attributes are the PACS's own, non-ASCII names included.
    const [record] = (await (await fetch(`${orthanc.dicomwebUrl}/studies?StudyInstanceUID=${studyUid}&includefield=all`)).json()) as Array<Record<string, { Value?: unknown[] }>>;
    expect(stored.v('00100020')).toBe(record!['00100020']!.Value![0]);
    // Exactly what the PACS's study record says (Orthanc 1.10's QIDO reduces ideographic/phonetic name groups to "^").
    expect(stored.v('00100010')).toEqual(record!['00100010']!.Value![0]);
    expect(stored.v('00080020')).toBe(record!['00080020']!.Value![0]);

    const dir = dirFiles(gw.dataDir, reportId);
    expect(dir.pdf?.equals(pdf)).toBe(true);
    expect(dir.json).toMatchObject({ reportId, studyId, isCritical: false, plainText: 'Impression: normal study.', unmatched: false, state: 'filed', pacs: { status: 'filed', sopInstanceUid: sop } });

    // The study's link list is not served from a cache that predates the report.
    expect(await studyLinkCount()).toBe(linksBefore + 1);
    const audit = [...gw.gateway.audit.query({ study: studyId, action: 'report_filed' })];
    expect(audit.map((a) => (a.detail as { sink: string }).sink).sort()).toEqual(['dir', 'pacs']);
  });

  it('retries a download that fails several times, then files it', async () => {
    const studyId = await knownStudy();
    const pdf = minimalPdf({ text: 'eventually' });
    const url = serve('/flaky.pdf', (_req, res, n) => {
      if (n <= 3) res.writeHead(503).end('busy');
      else res.writeHead(200, { 'content-length': pdf.length }).end(pdf);
    });
    const event = reportEvent(studyId, url);
    await deliver(event);
    await jobIn(event.data.reportId, ['filed']);
    expect(hits.get('/flaky.pdf')).toBe(4);
    const ids = await orthancInstances(reportSopInstanceUid(event.data.reportId));
    expect(ids).toHaveLength(1);
    expect((await storedReport(ids[0]!)).pdf.equals(pdf)).toBe(true);
  });

  it('files a report delivered several times (same event, same reportId) once; filing it again stores the same object', async () => {
    const studyId = await knownStudy();
    const pdf = minimalPdf({ text: 'duplicate' });
    const event = reportEvent(studyId, servePdf('/dup.pdf', pdf));
    const again = { ...event, id: `whe_${hex32()}` }; // another event for the same report
    const answers = await Promise.all([gw.send(event), gw.send(event), gw.send(again), gw.send(event)]);
    for (const a of answers) {
      expect(a.status).toBe(200);
      expect(await a.json()).toEqual({ success: true });
    }
    const job = await jobIn(event.data.reportId, ['filed']);
    expect(job.deliveries).toBe(4);
    expect(hits.get('/dup.pdf')).toBe(1);
    const sop = reportSopInstanceUid(event.data.reportId);
    expect(await orthancInstances(sop)).toHaveLength(1);

    // Avara repeating it after filing changes nothing; an operator forcing a refile stores the same SOP Instance UID.
    await deliver(event);
    expect(retryJob(gw.gateway.db, event.data.reportId, { force: true })).toMatchObject({ ok: true, previousState: 'filed' });
    await jobIn(event.data.reportId, ['filed']);
    await new Promise((r) => setTimeout(r, 300));
    const ids = await orthancInstances(sop);
    expect(ids).toHaveLength(1);
    expect((await storedReport(ids[0]!)).pdf.equals(pdf)).toBe(true);
    expect(hits.get('/dup.pdf')).toBe(1);
  });

  it('files a report for a study the gateway never saw to the directory only, marked unmatched', async () => {
    const pdf = minimalPdf({ text: 'unmatched' });
    const event = reportEvent(`stu_${hex32()}`, servePdf('/unmatched.pdf', pdf), { plainText: 'Report for an unknown study.' });
    await deliver(event);
    const job = await jobIn(event.data.reportId, ['unmatched']);
    expect(job.lastError).toMatch(/unmatched/);
    const dir = dirFiles(gw.dataDir, event.data.reportId);
    expect(dir.pdf?.equals(pdf)).toBe(true);
    expect(dir.json).toMatchObject({ unmatched: true, state: 'unmatched', plainText: 'Report for an unknown study.', pacs: { status: 'not_applicable' } });
    expect(await orthancInstances(reportSopInstanceUid(event.data.reportId))).toHaveLength(0);
  });

  it('refuses download hosts, addresses and redirects outside the policy, and keeps the job as failed with its reason', async () => {
    const studyId = await knownStudy();
    const port = pdfHost.split(':')[1];
    const redirectToPrivate = serve('/to-private', (_req, res) => res.writeHead(302, { location: 'https://10.1.2.3/r.pdf' }).end());
    const redirectToMetadata = serve('/to-metadata', (_req, res) => res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end());
    routes.set('/never.pdf', (_req, res) => res.writeHead(200).end(minimalPdf()));
    const cases: Array<[string, RegExp]> = [
      [`http://localhost:${port}/never.pdf?X-Amz-Signature=x`, /only https/],
      [`https://localhost:${port}/never.pdf`, /resolves to .* loopback/],
      ['https://127.0.0.1:1/r.pdf', /127\.0\.0\.1 is a loopback address/],
      ['https://192.168.0.10/r.pdf', /private address/],
      ['https://169.254.169.254/latest/meta-data/', /link-local/],
      [redirectToPrivate, /redirect refused .*10\.1\.2\.3 is a private address/],
      [redirectToMetadata, /redirect refused .*only https/],
    ];
    const events = cases.map(([url]) => reportEvent(studyId, url, { plainText: 'Kept although the PDF was refused.' }));
    for (const e of events) await deliver(e);
    for (const [i, e] of events.entries()) {
      const job = await jobIn(e.data.reportId, ['failed']);
      expect(job.lastError, cases[i]![0]).toMatch(cases[i]![1]);
      expect(job.lastError).not.toMatch(/Signature|never\.pdf|meta-data/);
      expect(job.attempts).toBe(1); // permanent: no pointless retries
      expect(dirFiles(gw.dataDir, e.data.reportId).json).toMatchObject({ state: 'failed', plainText: 'Kept although the PDF was refused.', pdf: null });
    }
    expect(hits.get('/never.pdf')).toBeUndefined();
  });

  it('refuses an oversize PDF and something that is not a PDF, kept as failed with the reason', async () => {
    const studyId = await knownStudy();
    const big = reportEvent(studyId, servePdf('/big.pdf', minimalPdf({ fill: MAX_BYTES * 2 })));
    const html = reportEvent(studyId, serve('/login', (_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>sign in</html>')));
    await deliver(big);
    await deliver(html);
    expect((await jobIn(big.data.reportId, ['failed'])).lastError).toMatch(/larger than REPORT_MAX_BYTES/);
    expect((await jobIn(html.data.reportId, ['failed'])).lastError).toMatch(/did not send a PDF/);
  });

  it('keeps retrying while the PACS is down, and files once it is back', async () => {
    const studyId = await knownStudy();
    const pdf = minimalPdf({ text: 'pacs outage' });
    const event = reportEvent(studyId, servePdf('/outage.pdf', pdf));
    orthanc.pause();
    try {
      await deliver(event);
      await waitFor('a failed filing attempt', () => {
        const j = getJob(gw.gateway.db, event.data.reportId);
        return j && j.stage === 'filing' && j.attempts >= 2 ? j : undefined;
      });
      expect(getJob(gw.gateway.db, event.data.reportId)).toMatchObject({ state: 'pending', lastError: expect.stringMatching(/PACS/) });
    } finally {
      orthanc.resume();
    }
    await jobIn(event.data.reportId, ['filed']);
    expect(await orthancInstances(reportSopInstanceUid(event.data.reportId))).toHaveLength(1);
  });

  it('announces a critical report: a Standard-Webhooks-signed notification with ids only, retried until accepted', async () => {
    const studyId = await knownStudy();
    criticalFailuresLeft = 2;
    criticalCalls.length = 0;
    const event = reportEvent(studyId, servePdf('/critical.pdf', minimalPdf({ text: 'critical' })), { isCritical: true, plainText: 'Tension pneumothorax.' });
    await deliver(event);
    const job = await waitFor('the notification', () => {
      const j = getJob(gw.gateway.db, event.data.reportId);
      return j?.criticalNotification?.state === 'sent' ? j : undefined;
    });
    expect(job.criticalNotification?.attempts).toBe(3);
    expect(criticalCalls.map((c) => c.status)).toEqual([500, 500, 204]);
    const ids = new Set(criticalCalls.map((c) => c.headers['webhook-id']));
    expect(ids.size).toBe(1); // the same message id on every retry
    const last = criticalCalls.at(-1)!;
    const payload = new Webhook(CRITICAL_SECRET).verify(last.body, last.headers) as { type: string; data: Record<string, unknown> };
    expect(payload).toMatchObject({ type: 'report.critical', data: { reportId: event.data.reportId, studyId, studyInstanceUid: studyUid, eventId: event.id, isCritical: true } });
    expect(last.body).not.toMatch(/pneumothorax|Signature|critical\.pdf/);
    await jobIn(event.data.reportId, ['filed']);
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/avara_critical_reports_total 1\b/);
    expect(metrics).toMatch(/avara_critical_report_notifications\{state="sent"\} 1\b/);
  });

  it('shows report jobs to operators in /metrics and /readyz', async () => {
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/avara_report_jobs\{state="filed"\} [1-9]/);
    expect(metrics).toMatch(/avara_report_jobs\{state="failed"\} [1-9]/);
    expect(metrics).toMatch(/avara_report_jobs\{state="unmatched"\} 1\b/);
    expect(metrics).toMatch(/avara_report_oldest_pending_age_seconds 0\b/);
    const ready = (await (await fetch(`${gw.url}/readyz`)).json()) as { status: string; reports: { pending: number; failed: number; unmatched: number } };
    expect(ready.status).toBe('ready'); // failed reports are for operators; the gateway keeps taking new ones
    expect(ready.reports).toMatchObject({ pending: 0, unmatched: 1 });
    expect(ready.reports.failed).toBeGreaterThan(0);
  });

  it('answers 503 (so that Avara retries) when the report cannot be journaled', async () => {
    const studyId = await knownStudy();
    const event = reportEvent(studyId, servePdf('/nojournal.pdf', minimalPdf()));
    gw.gateway.db.exec(`CREATE TRIGGER refuse_reports BEFORE INSERT ON report_jobs BEGIN SELECT RAISE(ABORT, 'disk full'); END;`);
    try {
      const res = await gw.send(event);
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('journal_unavailable');
    } finally {
      gw.gateway.db.exec('DROP TRIGGER refuse_reports');
    }
    await deliver(event); // Avara's retry
    await jobIn(event.data.reportId, ['filed']);
  });
});

// ---- the gateway as a process, killed between the acknowledgement and the filing -------------------

describe('a gateway killed with SIGKILL after acknowledging a report', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'avara-gw-kill-'));
  let child: ChildProcess | undefined;
  let logs = '';
  afterAll(() => {
    child?.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function startChild(port: number): Promise<ChildProcess> {
    const proc = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH,
        PORT: String(port),
        HOST: '127.0.0.1',
        PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
        AVARA_WEBHOOK_SECRET: TEST_WEBHOOK_SECRET,
        URL_SIGNING_SECRET: TEST_URL_SECRET,
        DICOMWEB_URL: orthanc.dicomwebUrl,
        DATA_DIR: dataDir,
        LOG_LEVEL: 'debug',
        REPORT_DOWNLOAD_ALLOWED_HOSTS: pdfHost,
        REPORT_RETRY_BASE_MS: '50',
        REPORT_RETRY_MAX_MS: '300',
        REPORT_POLL_MS: '100',
      },
    });
    proc.stdout!.on('data', (c: Buffer) => (logs += c.toString()));
    proc.stderr!.on('data', (c: Buffer) => (logs += c.toString()));
    await waitFor('the gateway to listen', async () => {
      if (proc.exitCode !== null) throw new Error(`the gateway exited (${proc.exitCode}):\n${logs}`);
      try {
        return (await fetch(`http://127.0.0.1:${port}/healthz`)).ok || undefined;
      } catch {
        return undefined;
      }
    });
    return proc;
  }

  function sender(port: number) {
    return { send: (event: unknown) => sendSigned(`http://127.0.0.1:${port}`, event) };
  }


  it('files the report after the restart, exactly once, and never logs the URL, the text or patient data', async () => {
    const port = await freePort();
    const g = sender(port);
    child = await startChild(port);
    const studyId = await knownStudy(g);

    const pdf = minimalPdf({ text: 'survives a crash', odd: false });
    let release = false;
    let requested!: () => void;
    const downloadStarted = new Promise<void>((r) => (requested = r));
    const url = serve('/held.pdf', (_req, res) => {
      if (release) return res.writeHead(200, { 'content-length': pdf.length }).end(pdf);
      requested(); // hold the response: the gateway has acknowledged and is mid-download
    });
    const event = reportEvent(studyId, url, { plainText: 'UNIQUE-REPORT-TEXT-4711' });
    await deliver(event, g);
    await downloadStarted;

    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    pdfServer.closeAllConnections();
    const sop = reportSopInstanceUid(event.data.reportId);
    expect(await orthancInstances(sop)).toHaveLength(0);

    release = true;
    child = await startChild(port);
    const db = new Database(path.join(dataDir, 'gateway.sqlite'), { readonly: true });
    let job: ReportJobView;
    try {
      job = await jobIn(event.data.reportId, ['filed'], db);
    } finally {
      db.close();
    }
    expect(job.deliveries).toBe(1);
    expect(hits.get('/held.pdf')).toBe(2);
    const ids = await orthancInstances(sop);
    expect(ids).toHaveLength(1);
    expect((await storedReport(ids[0]!)).pdf.equals(pdf)).toBe(true);
    const dir = dirFiles(dataDir, event.data.reportId);
    expect(dir.pdf?.equals(pdf)).toBe(true);
    expect(dir.json).toMatchObject({ state: 'filed', plainText: 'UNIQUE-REPORT-TEXT-4711', pacs: { status: 'filed', sopInstanceUid: sop } });
    expect(readdirSafe(path.join(dataDir, 'report-spool'))).toEqual([]);

    // Graceful stop.
    const stopped = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await stopped).toBe(0);

    expect(logs).toMatch(/report journaled/);
    expect(logs).toMatch(/report filed/);
    expect(logs).not.toMatch(/SIGSECRET|held\.pdf|UNIQUE-REPORT-TEXT/);
    for (const name of [DEFAULT_PATIENT_NAME, LATIN1_PATIENT_NAME, UTF8_PATIENT_NAME]) expect(logs).not.toContain(name.split('^')[0]);
  });
});

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/store/database.js';
import { knownEvent } from '../src/webhooks/event-schemas.js';
import { buildStudyFixtures, type Fixture } from './support/fixtures.js';
import { hex32, startGateway, TEST_URL_SECRET, TEST_WEBHOOK_SECRET, type RunningGateway } from './support/gateway.js';
import { freePort, startOrthanc, type TestOrthanc } from './support/orthanc.js';

/**
 * The operator CLI as operators run it: a child process reading the environment, against a real Orthanc
 * (with credentials) loaded with real DICOM, and a real gateway.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CREDENTIALS = { username: 'avara-cli', password: 'orthanc-cli-test-password' };

let orthanc: TestOrthanc;
let gw: RunningGateway;
let fixtures: Fixture[];
let studyUid: string;

beforeAll(async () => {
  [orthanc, fixtures] = await Promise.all([startOrthanc({ credentials: CREDENTIALS }), buildStudyFixtures()]);
  for (const f of fixtures) await orthanc.upload(f.path);
  studyUid = fixtures[0]!.studyUid;
  gw = await startGateway(orthanc);
});
afterAll(async () => {
  await gw?.stop();
  await orthanc?.stop();
});

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The gateway's own environment, as a deployment would set it; `undefined` removes a variable. */
function env(overrides: Record<string, string | undefined> = {}): Record<string, string> {
  const all: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    HOST: '127.0.0.1',
    PORT: new URL(gw.url).port,
    PUBLIC_BASE_URL: gw.url,
    DICOMWEB_URL: orthanc.dicomwebUrl,
    DICOMWEB_USERNAME: CREDENTIALS.username,
    DICOMWEB_PASSWORD: CREDENTIALS.password,
    AVARA_WEBHOOK_SECRET: TEST_WEBHOOK_SECRET,
    URL_SIGNING_SECRET: TEST_URL_SECRET,
    DATA_DIR: gw.dataDir,
    ...overrides,
  };
  return Object.fromEntries(Object.entries(all).filter((e): e is [string, string] => e[1] !== undefined));
}

function cli(args: string[], environment: Record<string, string> = env()): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/index.ts'), ...args], {
      cwd: ROOT,
      env: environment,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const lines = (s: string) => s.split('\n').filter((l) => l.trim() !== '');
const whsec = () => `whsec_${randomBytes(24).toString('base64')}`;

async function instanceCount(o: TestOrthanc = orthanc): Promise<number> {
  const auth = o.username ? { authorization: `Basic ${Buffer.from(`${o.username}:${o.password}`).toString('base64')}` } : undefined;
  const res = await fetch(`${o.url}/statistics`, { headers: auth });
  return ((await res.json()) as { CountInstances: number }).CountInstances;
}

/** Asserts a usage or configuration failure: exactly one line on stderr, nothing on stdout. */
function expectOneLineError(r: Result, code: number, pattern: RegExp) {
  expect(r.code, r.stderr).toBe(code);
  expect(r.stdout).toBe('');
  expect(lines(r.stderr)).toHaveLength(1);
  expect(r.stderr).toMatch(pattern);
}

describe('avara-gateway doctor', () => {
  it('passes against a healthy Orthanc, and stores nothing in it', async () => {
    const before = await instanceCount();
    expect(before).toBe(fixtures.length);
    const r = await cli(['doctor']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const out = lines(r.stdout);
    for (const name of ['configuration', 'PACS reachable', 'PACS credentials', 'QIDO-RS', 'WADO-RS', 'STOW-RS', 'PACS flavor', 'Orthanc REST retrieve', 'clock skew', 'DATA_DIR']) {
      expect(out.find((l) => l.startsWith(`✔ ${name}:`)), `${name} in\n${r.stdout}`).toBeDefined();
    }
    expect(r.stdout).not.toContain('✘');
    expect(r.stdout).toMatch(/✔ PACS credentials: accepted \(basic auth as avara-cli\)/);
    expect(r.stdout).toMatch(/✔ WADO-RS: instance [\d.]+ .*"DICM" present/);
    expect(r.stdout).toMatch(/✔ STOW-RS: endpoint answers \(POST \/studies with an empty non-DICOM body: HTTP 415\); nothing was stored/);
    expect(r.stdout).toMatch(/✔ PACS flavor: auto chooses orthanc \(Orthanc 1\.\d+/);
    expect(r.stdout).toMatch(/✔ clock skew: the PACS clock is within 1 s of ours \(Orthanc's \/tools\/now\)/);
    expect(r.stdout).not.toContain(CREDENTIALS.password);
    expect(await instanceCount()).toBe(before);
  });

  it('passes against an empty archive, saying there was nothing to retrieve', async () => {
    const empty = await startOrthanc();
    try {
      const r = await cli(['doctor'], env({ DICOMWEB_URL: empty.dicomwebUrl, DICOMWEB_USERNAME: undefined, DICOMWEB_PASSWORD: undefined }));
      expect(r.code, r.stdout).toBe(0);
      expect(r.stdout).toMatch(/✔ PACS credentials: none configured/);
      expect(r.stdout).toMatch(/✔ WADO-RS: not tried: the archive holds no study/);
      expect(r.stdout).toMatch(/✔ STOW-RS: endpoint answers/);
      expect(await instanceCount(empty)).toBe(0);
    } finally {
      await empty.stop();
    }
  });

  it('fails with one clear line when the PACS refuses the password', async () => {
    const r = await cli(['doctor'], env({ DICOMWEB_PASSWORD: 'not-the-password' }));
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^✔ PACS reachable: .* answered \(HTTP 401\)$/m);
    expect(lines(r.stdout).filter((l) => l.startsWith('✘'))).toEqual([
      '✘ PACS credentials: the PACS refused DICOMWEB_USERNAME avara-cli with DICOMWEB_PASSWORD (HTTP 401)',
    ]);
    expect(r.stdout).toMatch(/^– QIDO-RS: not run: the PACS refused the credentials$/m);
    expect(r.stdout).not.toContain('not-the-password');
  });

  it('fails with one clear line when nothing listens on the PACS port', async () => {
    const port = await freePort();
    const r = await cli(['doctor'], env({ DICOMWEB_URL: `http://127.0.0.1:${port}/dicom-web` }));
    expect(r.code).toBe(1);
    expect(lines(r.stdout).filter((l) => l.startsWith('✘'))).toEqual([
      `✘ PACS reachable: cannot reach http://127.0.0.1:${port}/dicom-web: the PACS could not be reached (ECONNREFUSED)`,
    ]);
    expect(r.stdout).toMatch(/^– STOW-RS: not run: the PACS is unreachable$/m);
  });

  it('fails a read-only account at STOW-RS, and a PACS clock ten minutes off (a generic DICOMweb archive)', async () => {
    // Not an Orthanc: QIDO answers an empty list with an HTTP Date ten minutes ahead; STOW-RS refuses these credentials.
    const stows: string[] = [];
    const pacs: Server = createServer((req, res) => {
      res.setHeader('date', new Date(Date.now() + 600_000).toUTCString());
      if (req.method === 'GET' && req.url?.startsWith('/rs/studies?')) {
        res.setHeader('content-type', 'application/dicom+json');
        res.end('[]');
      } else if (req.method === 'POST' && req.url === '/rs/studies') {
        req.on('data', (d: Buffer) => stows.push(d.toString()));
        req.on('end', () => res.writeHead(403).end());
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => pacs.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(pacs.address() as { port: number }).port}/rs`;
      const r = await cli(['doctor'], env({ DICOMWEB_URL: url }));
      expect(r.code).toBe(1);
      expect(lines(r.stdout).filter((l) => l.startsWith('✘'))).toEqual([
        '✘ STOW-RS: the PACS refused to let these credentials store (HTTP 403): the account may be read-only',
        expect.stringMatching(/^✘ clock skew: the PACS clock is 600 s ahead of ours \(HTTP Date header\): more than the ±300 s/),
      ]);
      expect(r.stdout).toMatch(/^✔ WADO-RS: not tried: the archive holds no study/m);
      expect(r.stdout).toMatch(/^✔ PACS flavor: auto chooses dicomweb \(/m);
      expect(stows.join('')).toBe(''); // the probe sent no byte of DICOM
    } finally {
      await new Promise<void>((resolve) => pacs.close(() => resolve()));
    }
  });

  it('names each configuration problem on its own line', async () => {
    const r = await cli(['doctor'], env({ URL_SIGNING_SECRET: 'short', PACS_FLAVOR: 'dcm4chee' }));
    expect(r.code).toBe(1);
    const failed = lines(r.stdout).filter((l) => l.startsWith('✘ configuration:'));
    expect(failed).toHaveLength(2);
    expect(r.stdout).toMatch(/✘ configuration: URL_SIGNING_SECRET: each secret must be at least 32 characters/);
    expect(r.stdout).toMatch(/✘ configuration: PACS_FLAVOR: must be auto, dicomweb or orthanc/);
  });

  it('warns about a variable the gateway does not read', async () => {
    const r = await cli(['doctor'], env({ DICOMWEB_PASSWROD: 'typo' }));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^⚠ configuration: DICOMWEB_PASSWROD is set but the gateway does not read it/m);
  });
});

describe('avara-gateway simulate', () => {
  it('study.access_requested: the gateway authorizes and answers one URL per instance', async () => {
    const r = await cli(['simulate', 'study.access_requested', '--study-instance-uid', studyUid]);
    expect(r.code, r.stderr).toBe(0);
    const answer = JSON.parse(r.stdout) as { authorized: boolean; urls: string[] };
    expect(answer.authorized).toBe(true);
    expect(answer.urls).toHaveLength(fixtures.length);
    expect(new Set(answer.urls).size).toBe(fixtures.length);
    expect(r.stderr).toMatch(/← HTTP 200 OK in \d+ ms/);
    expect(r.stdout).toContain('\n  "authorized": true'); // pretty-printed
  });

  it('a wrong secret: the gateway answers 401 and the exit status is not 0', async () => {
    const r = await cli(['simulate', 'study.access_requested', '--study-instance-uid', studyUid], env({ AVARA_WEBHOOK_SECRET: whsec() }));
    expect(r.code).toBe(1);
    expect((JSON.parse(r.stdout) as { error: { code: string } }).error.code).toBe('bad_signature');
    expect(lines(r.stderr).at(-1)).toMatch(/^avara-gateway simulate: the gateway answered HTTP 401 \(bad_signature\): is AVARA_WEBHOOK_SECRET the same/);
  });

  it('signs every event type exactly as Standard Webhooks does, with a body the gateway schema accepts', async () => {
    const received: Array<{ headers: Record<string, string>; body: string }> = [];
    const server: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        received.push({ headers: req.headers as Record<string, string>, body });
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ received: true }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`;
    try {
      const studyId = `stu_${hex32()}`;
      const runs = [
        ['study.access_requested', '--study-instance-uid', studyUid, '--study-id', studyId],
        ['secondary_capture.access_requested', '--study-instance-uid', studyUid, '--sop-instance-uid', '1.2.3.4'],
        ['report.delivered', '--study-id', studyId, '--presigned-url', 'https://reports.example/r.pdf?sig=x', '--critical', '--plain-text', 'No acute findings.'],
      ];
      for (const args of runs) {
        const r = await cli(['simulate', ...args, '--url', url]);
        expect(r.code, r.stderr).toBe(0);
      }
      expect(received).toHaveLength(3);
      for (const { headers, body } of received) {
        // The reference implementation verifies (and checks the timestamp) or throws.
        const event = new Webhook(TEST_WEBHOOK_SECRET).verify(body, headers) as { id: string; type: string; data: Record<string, unknown> };
        expect(knownEvent.safeParse(event).success).toBe(true);
        expect(headers['webhook-id']).toBe(event.id);
        expect(event.id).toMatch(/^whe_[0-9a-f]{32}$/);
      }
      const [access, capture, report] = received.map((x) => JSON.parse(x.body) as { type: string; data: Record<string, unknown> });
      expect(access!.data).toEqual({ studyId, studyInstanceUid: studyUid });
      expect(capture!.data).toMatchObject({ studyInstanceUid: studyUid, sopInstanceUid: '1.2.3.4', studyId: expect.stringMatching(/^stu_[0-9a-f]{32}$/) });
      expect(report!.data).toMatchObject({ studyId, isCritical: true, plainText: 'No acute findings.', reportId: expect.stringMatching(/^rep_[0-9a-f]{32}$/) });
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('signs with the first of several secrets', async () => {
    const r = await cli(['simulate', 'study.access_requested', '--study-instance-uid', studyUid], env({ AVARA_WEBHOOK_SECRET: `${TEST_WEBHOOK_SECRET} ${whsec()}` }));
    expect(r.code, r.stderr).toBe(0);
    const r2 = await cli(['simulate', 'study.access_requested', '--study-instance-uid', studyUid], env({ AVARA_WEBHOOK_SECRET: `${whsec()} ${TEST_WEBHOOK_SECRET}` }));
    expect(r2.code).toBe(1);
  });

  it('bad arguments: one line on stderr and exit status 2', async () => {
    expectOneLineError(await cli(['simulate']), 2, /^avara-gateway simulate: which event type\?/);
    expectOneLineError(await cli(['simulate', 'study.deleted', '--study-instance-uid', studyUid]), 2, /unknown event type "study\.deleted"/);
    expectOneLineError(await cli(['simulate', 'study.access_requested']), 2, /study\.access_requested needs --study-instance-uid/);
    expectOneLineError(await cli(['simulate', 'study.access_requested', '--study-instance-uid', '1.02.3']), 2, /data\.studyInstanceUid: must be a DICOM UID/);
    expectOneLineError(await cli(['simulate', 'study.access_requested', '--study-instance-uid', studyUid, '--study-id', 'stu_XYZ']), 2, /data\.studyId: must be stu_ followed by 32 lowercase hex/);
    expectOneLineError(await cli(['simulate', 'report.delivered', '--study-id', `stu_${hex32()}`]), 2, /report\.delivered needs --presigned-url/);
    expectOneLineError(await cli(['simulate', 'study.access_requested', '--study-instance-uid', studyUid, '--critical']), 2, /--critical does not apply to study\.access_requested/);
    expectOneLineError(await cli(['simulate', 'study.access_requested', '--study-instance-uid', studyUid, '--url', 'ftp://x']), 2, /--url must be an http\(s\) URL/);
    expectOneLineError(await cli(['simulate', 'study.access_requested', '--study-instance-uid', studyUid, '--frobnicate']), 2, /unknown option --frobnicate \(see: avara-gateway simulate --help\)/);
    expectOneLineError(await cli(['simulate', 'study.access_requested', '--study-instance-uid', studyUid], env({ URL_SIGNING_SECRET: undefined })), 78, /invalid configuration: URL_SIGNING_SECRET: is required/);
  });

  it('a gateway that is not there: one line, exit status 1', async () => {
    const port = await freePort();
    const r = await cli(['simulate', 'study.access_requested', '--study-instance-uid', studyUid, '--url', `http://127.0.0.1:${port}/webhooks/avara`]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(lines(r.stderr).at(-1)).toBe(`avara-gateway simulate: could not reach http://127.0.0.1:${port}/webhooks/avara (ECONNREFUSED): is the gateway running, and is --url right?`);
  });
});

describe('avara-gateway audit', () => {
  let studyId: string;
  let fetchedSop: string;
  let fetchedBytes: number;
  let windowStart: number;
  let windowEnd: number;

  beforeAll(async () => {
    windowStart = Date.now() - 1;
    studyId = `stu_${hex32()}`;
    const r = await cli(['simulate', 'study.access_requested', '--study-instance-uid', studyUid, '--study-id', studyId]);
    expect(r.code, r.stderr).toBe(0);
    const url = (JSON.parse(r.stdout) as { urls: string[] }).urls[0]!;
    const res = await fetch(url);
    expect(res.status).toBe(200);
    fetchedBytes = (await res.arrayBuffer()).byteLength;
    // The download is recorded once the response has closed on the gateway's side.
    for (let i = 0; i < 100 && ![...gw.gateway.audit.query({ study: studyId, action: 'download' })].length; i++) await new Promise((r) => setTimeout(r, 20));
    fetchedSop = [...gw.gateway.audit.query({ study: studyId, action: 'download' })][0]!.sopInstanceUid!;
    windowEnd = Date.now() + 1;
  });

  const parse = (stdout: string) => lines(stdout).map((l) => JSON.parse(l) as Record<string, unknown>);

  it('--study UID: who was given links to the study and who downloaded what, when', async () => {
    const r = await cli(['audit', '--study', studyUid]);
    expect(r.code, r.stderr).toBe(0);
    const events = parse(r.stdout).filter((e) => e.studyId === studyId);
    expect(events.map((e) => e.action)).toEqual(['links_issued', 'download']);
    const [issued, download] = events;
    expect(issued).toMatchObject({ studyInstanceUid: studyUid, webhookId: expect.stringMatching(/^whe_/), detail: { links: fixtures.length } });
    expect(download).toMatchObject({ studyInstanceUid: studyUid, sopInstanceUid: fetchedSop, status: 200, bytes: fetchedBytes, client: expect.any(String) });
    expect(new Date(download!.time as string).getTime()).toBeGreaterThanOrEqual(windowStart);
    expect(r.stderr).toMatch(/\d+ audit events \(study /);
  });

  it('--study stu_… and --format table', async () => {
    const r = await cli(['audit', '--study', studyId, '--format', 'table']);
    expect(r.code, r.stderr).toBe(0);
    const out = lines(r.stdout);
    expect(out[0]).toMatch(/^TIME\s+ACTION\s+STUDY ID\s+STUDY INSTANCE UID\s+SOP INSTANCE UID\s+CLIENT\s+STATUS\s+BYTES\s+DETAIL$/);
    expect(out.slice(1).map((l) => l.split(/\s+/)[1])).toEqual(['links_issued', 'download']);
    expect(out[2]).toContain(fetchedSop);
    expect(out[2]).toContain(String(fetchedBytes));
  });

  it('--action download --since --until: what left in a time window', async () => {
    const inWindow = await cli(['audit', '--action', 'download', '--since', new Date(windowStart).toISOString(), '--until', new Date(windowEnd).toISOString()]);
    expect(inWindow.code, inWindow.stderr).toBe(0);
    const events = parse(inWindow.stdout);
    expect(events.length).toBeGreaterThanOrEqual(1);
    expect(events.every((e) => e.action === 'download')).toBe(true);
    expect(events.some((e) => e.sopInstanceUid === fetchedSop && e.studyId === studyId)).toBe(true);
    const after = await cli(['audit', '--action', 'download', '--since', new Date(windowEnd + 60_000).toISOString()]);
    expect(after.code).toBe(0);
    expect(after.stdout).toBe('');
    expect(after.stderr).toMatch(/^0 audit events/);
  });

  it('--action report_filed, several actions, --limit', async () => {
    const filed = await cli(['audit', '--action', 'report_filed']);
    expect(filed.code, filed.stderr).toBe(0);
    expect(parse(filed.stdout).every((e) => e.action === 'report_filed')).toBe(true);
    const both = await cli(['audit', '--action', 'links_issued,download', '--study', studyId, '--limit', '1']);
    expect(parse(both.stdout).map((e) => e.action)).toEqual(['links_issued']);
  });

  it('bad arguments: one line on stderr and exit status 2', async () => {
    expectOneLineError(await cli(['audit', '--limit', '0']), 2, /--limit must be a whole number of at least 1/);
    expectOneLineError(await cli(['audit', '--action', 'deleted']), 2, /unknown action "deleted": one of links_issued, /);
    expectOneLineError(await cli(['audit', '--study', 'Robert^Smith']), 2, /--study must be an Avara studyId/);
    expectOneLineError(await cli(['audit', '--since', 'last week']), 2, /--since must be an ISO 8601 date/);
    expectOneLineError(await cli(['audit', '--since', '2025-03-02', '--until', '2025-03-01']), 2, /--until must be later than --since/);
    expectOneLineError(await cli(['audit', '--format', 'xml']), 2, /--format must be jsonl or table/);
    expectOneLineError(await cli(['audit', 'everything']), 2, /Unexpected argument 'everything'/);
  });

  it('a DATA_DIR without a store: one line, and nothing created', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'avara-cli-empty-'));
    try {
      expectOneLineError(await cli(['audit'], env({ DATA_DIR: path.join(dir, 'missing') })), 1, /no gateway store at .*gateway\.sqlite: is DATA_DIR the gateway's\?/);
      expectOneLineError(await cli(['reports'], env({ DATA_DIR: dir })), 1, /no gateway store at/);
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('avara-gateway reports', () => {
  let dataDir: string;
  const ids = { failed: `rep_${hex32()}`, pending: `rep_${hex32()}`, filed: `rep_${hex32()}`, unmatched: `rep_${hex32()}` };

  beforeAll(() => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'avara-cli-reports-'));
    const db = openDatabase(dataDir);
    const insert = db.prepare(
      `INSERT INTO report_jobs (report_id, event_id, study_id, is_critical, plain_text, presigned_url, received_at, state, attempts, next_attempt_at, give_up_at, last_error, filed_at, updated_at)
       VALUES (@id, @eventId, @studyId, 0, 'text', 'https://reports.example/secret-token', @at, @state, @attempts, @at, @at, @error, @filedAt, @at)`,
    );
    let at = Date.now() - 60_000;
    for (const [state, id] of Object.entries(ids)) {
      insert.run({
        id,
        eventId: `whe_${hex32()}`,
        studyId: `stu_${hex32()}`,
        at: at++,
        state,
        attempts: state === 'failed' ? 7 : 0,
        error: state === 'failed' ? 'the presigned URL answered HTTP 403' : null,
        filedAt: state === 'filed' ? at : null,
      });
    }
    db.close();
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('lists the jobs that need attention, never the URL or the text', async () => {
    const r = await cli(['reports'], env({ DATA_DIR: dataDir }));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/report jobs: 1 pending, 1 filed, 1 unmatched, 1 failed; oldest pending received /);
    const out = lines(r.stdout);
    expect(out[0]).toMatch(/^REPORT ID\s+STATE\s+STAGE/);
    expect(out.slice(1).map((l) => l.split(/\s+/)[0]).sort()).toEqual([ids.failed, ids.pending, ids.unmatched].sort());
    expect(r.stdout).toContain('the presigned URL answered HTTP 403');
    expect(r.stdout).not.toContain('secret-token');
    const filed = await cli(['reports', '--state', 'filed', '--format', 'jsonl'], env({ DATA_DIR: dataDir }));
    expect(lines(filed.stdout).map((l) => (JSON.parse(l) as { reportId: string }).reportId)).toEqual([ids.filed]);
  });

  it('retry puts a failed job back in the queue; a filed one only with --force', async () => {
    const r = await cli(['reports', 'retry', ids.failed], env({ DATA_DIR: dataDir }));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^✔ ${ids.failed} queued again \\(was failed\\)`));
    const pending = await cli(['reports', '--state', 'pending', '--format', 'jsonl'], env({ DATA_DIR: dataDir }));
    expect(lines(pending.stdout).map((l) => (JSON.parse(l) as { reportId: string }).reportId)).toContain(ids.failed);

    expectOneLineError(await cli(['reports', 'retry', ids.filed], env({ DATA_DIR: dataDir })), 1, /is already filed/);
    expect((await cli(['reports', 'retry', ids.filed, '--force'], env({ DATA_DIR: dataDir }))).code).toBe(0);
    expectOneLineError(await cli(['reports', 'retry', `rep_${hex32()}`], env({ DATA_DIR: dataDir })), 1, /no report job rep_/);
    expectOneLineError(await cli(['reports', 'retry', 'rep_123'], env({ DATA_DIR: dataDir })), 2, /is not a reportId/);
    expectOneLineError(await cli(['reports', '--state', 'lost'], env({ DATA_DIR: dataDir })), 2, /--state must be one of pending, filed, unmatched, failed, all/);
  });
});

describe('avara-gateway', () => {
  it('--help for every command, and one line for an unknown one', async () => {
    for (const command of ['doctor', 'simulate', 'audit', 'reports']) {
      const r = await cli([command, '--help'], { PATH: process.env.PATH ?? '' });
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^usage: avara-gateway ${command}`));
    }
    const top = await cli(['--help'], { PATH: process.env.PATH ?? '' });
    expect(top.stdout).toMatch(/commands:\n {2}doctor/);
    expectOneLineError(await cli(['docter']), 2, /^avara-gateway: unknown command "docter": one of doctor, simulate, audit, reports/);
  });
});

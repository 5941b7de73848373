import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, statfsSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { ConfigError, KNOWN_ENV_VARS, loadConfig, type Config } from '../config/env.js';
import { createPacs } from '../pacs/create-pacs.js';
import { Tag, str, type DicomJson } from '../pacs/dicom-json.js';
import { DicomwebPacs } from '../pacs/dicomweb-pacs.js';
import { header, PacsHttp, type PacsResponse } from '../pacs/http.js';
import { PacsError, type InstanceLocator, type PacsClient } from '../pacs/pacs-client.js';
import { TIMESTAMP_TOLERANCE_SECONDS } from '../webhooks/signature.js';
import { errorMessage, EXIT, parseOrUsage, printableUrl, type CliContext, type Command } from './command.js';

export const help = `usage: avara-gateway doctor

Checks this gateway's deployment, one line per check (✔ pass, ⚠ pass with a warning, ✘ fail, – not run):
  configuration        every variable, as the gateway reads it (each problem on its own line)
  PACS reachable       DICOMWEB_URL answers
  PACS credentials     DICOMWEB_USERNAME/PASSWORD or DICOMWEB_BEARER_TOKEN are accepted
  QIDO-RS              GET {DICOMWEB_URL}/studies?limit=1
  WADO-RS              retrieves the first bytes of one instance, then stops (passes on an empty archive)
  STOW-RS              POSTs an empty, non-DICOM body to {DICOMWEB_URL}/studies: the endpoint must answer,
                       and nothing can be stored (safe against a production archive)
  PACS flavor          the path PACS_FLAVOR=auto chooses (Orthanc native REST or generic DICOMweb)
  clock skew           the PACS's clock against ours (warns above 60 s, fails above ${TIMESTAMP_TOLERANCE_SECONDS} s,
                       the window Avara's signed webhooks are accepted in)
  DATA_DIR             writable, with free space
Reads the same environment variables as the gateway. Exit status 0 only when every check passes.`;

type Outcome = 'pass' | 'warn' | 'fail' | 'skip';
const MARK: Record<Outcome, string> = { pass: '✔', warn: '⚠', fail: '✘', skip: '–' };

/** Variable-name prefixes the gateway owns: a name with one of them that the gateway does not read is likely a typo. */
const OWN_PREFIXES = ['AVARA_', 'DICOMWEB_', 'PACS_', 'URL_', 'REPORT_', 'CRITICAL_REPORT_', 'STUDY_', 'SYNC_', 'CORS_', 'SHUTDOWN_', 'QIDO_', 'UPLOAD_'];
const LOW_DISK_BYTES = 512 * 1024 * 1024;

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  parseOrUsage('doctor', () => parseArgs({ args: argv, options: {}, strict: true, allowPositionals: false }));
  let failed = false;
  const report = (outcome: Outcome, name: string, detail: string) => {
    if (outcome === 'fail') failed = true;
    ctx.out(`${MARK[outcome]} ${name}: ${detail}`);
  };

  let config: Config;
  try {
    config = loadConfig(ctx.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const problem of err.problems) report('fail', 'configuration', problem);
    report('skip', 'other checks', 'not run: fix the configuration first');
    return EXIT.failed;
  }
  checkConfiguration(config, ctx.env, report);

  const http = new PacsHttp({ auth: config.pacsAuth, timeoutMs: config.pacsTimeoutMs });
  ctx.note(`checking the PACS at ${printableUrl(config.dicomwebUrl)} (each request gives up after ${Math.min(config.pacsTimeoutMs, 15_000) / 1000} s)…`);
  try {
    await checkPacs(config, http, report);
  } finally {
    await http.close();
  }
  checkDataDir(config.dataDir, report);
  return failed ? EXIT.failed : EXIT.ok;
}

export const doctor: Command = { help, run };

type Report = (outcome: Outcome, name: string, detail: string) => void;

function checkConfiguration(config: Config, env: NodeJS.ProcessEnv, report: Report): void {
  const auth =
    config.pacsAuth.kind === 'basic' ? `basic auth as ${config.pacsAuth.username}` : config.pacsAuth.kind === 'bearer' ? 'bearer token' : 'no PACS credentials';
  report(
    'pass',
    'configuration',
    `valid (PORT ${config.port}, DICOMWEB_URL ${printableUrl(config.dicomwebUrl)}, ${auth}, PACS_FLAVOR ${config.pacsFlavor}, DATA_DIR ${config.dataDir}, ${config.webhookSecrets.length} webhook secret(s))`,
  );
  if (!config.webhookVerify) report('warn', 'configuration', 'AVARA_WEBHOOK_VERIFY=false: webhook signatures are NOT checked (local development only)');
  if (!env.PUBLIC_BASE_URL?.trim()) {
    report('warn', 'configuration', `PUBLIC_BASE_URL is not set: links will name ${config.publicBaseUrl}, which Avara's viewer cannot reach from outside`);
  } else if (config.publicBaseUrl.startsWith('http:') && !/^http:\/\/(localhost|127\.|\[::1\])/.test(config.publicBaseUrl)) {
    report('warn', 'configuration', `PUBLIC_BASE_URL ${config.publicBaseUrl} is plain http: links carry access tokens, serve them over https`);
  }
  const unknown = Object.keys(env).filter((k) => OWN_PREFIXES.some((p) => k.startsWith(p)) && !KNOWN_ENV_VARS.includes(k));
  for (const name of unknown.sort()) report('warn', 'configuration', `${name} is set but the gateway does not read it (a typo?)`);
}

async function checkPacs(config: Config, http: PacsHttp, report: Report): Promise<void> {
  const root = config.dicomwebUrl;
  const shown = printableUrl(root);
  const timeoutMs = Math.min(config.pacsTimeoutMs, 15_000);
  const deadline = () => AbortSignal.timeout(timeoutMs);
  const skipAll = (why: string) => {
    for (const name of ['QIDO-RS', 'WADO-RS', 'STOW-RS', 'PACS flavor', 'clock skew']) report('skip', name, `not run: ${why}`);
  };

  // One QIDO request answers three questions: does anything listen, are our credentials good, does QIDO work.
  const sentAt = Date.now();
  const started = performance.now();
  let res: PacsResponse;
  try {
    res = await http.request(`${root}/studies?limit=1`, { headers: { accept: 'application/dicom+json' }, signal: deadline() });
  } catch (err) {
    if (err instanceof PacsError && err.kind === 'unauthorized') {
      report('pass', 'PACS reachable', `${shown} answered (HTTP ${err.status})`);
      report('fail', 'PACS credentials', refusedCredentials(config, err.status));
      skipAll('the PACS refused the credentials');
      return;
    }
    report('fail', 'PACS reachable', `cannot reach ${shown}: ${errorMessage(err)}`);
    report('skip', 'PACS credentials', 'not run: the PACS is unreachable');
    skipAll('the PACS is unreachable');
    return;
  }
  const ms = Math.round(performance.now() - started);
  const receivedAt = Date.now();
  report('pass', 'PACS reachable', `${shown} answered in ${ms} ms`);
  report('pass', 'PACS credentials', config.pacsAuth.kind === 'none' ? 'none configured, and the PACS asked for none' : `accepted (${config.pacsAuth.kind === 'basic' ? `basic auth as ${config.pacsAuth.username}` : 'bearer token'})`);
  const dateHeader = header(res.headers, 'date');

  const qido = await checkQido(res, report);
  const study = qido.ok ? qido.study : undefined;
  const instance = study ? await firstInstance(http, root, study, deadline) : undefined;
  const dicomweb = new DicomwebPacs(root, http, config.qidoPageSize);
  if (qido.ok) await checkRetrieve('WADO-RS', dicomweb, study, instance, deadline, report);
  else report('skip', 'WADO-RS', 'not run: QIDO-RS failed, so no instance to retrieve is known');
  await checkStow(root, http, deadline, report);
  const { pacs, isOrthanc } = await checkFlavor(config, http, report);
  if (pacs?.flavor === 'orthanc' && instance) await checkRetrieve('Orthanc REST retrieve', pacs, study, instance, deadline, report);
  await checkClock(config, http, dateHeader ? { date: dateHeader, sentAt, receivedAt } : undefined, isOrthanc, deadline, report);
}

function refusedCredentials(config: Config, status: number | undefined): string {
  const code = `HTTP ${status ?? 401}`;
  if (config.pacsAuth.kind === 'none') return `the PACS asks for credentials (${code}) and none are configured: set DICOMWEB_USERNAME and DICOMWEB_PASSWORD (or DICOMWEB_BEARER_TOKEN)`;
  if (config.pacsAuth.kind === 'bearer') return `the PACS refused DICOMWEB_BEARER_TOKEN (${code})`;
  return `the PACS refused DICOMWEB_USERNAME ${config.pacsAuth.username} with DICOMWEB_PASSWORD (${code})`;
}

/** Whether QIDO works, and the StudyInstanceUID of the study it listed, if any. */
async function checkQido(res: PacsResponse, report: Report): Promise<{ ok: boolean; study?: string }> {
  if (res.status === 204) {
    await res.body.dump();
    report('pass', 'QIDO-RS', 'GET /studies?limit=1 answered HTTP 204: the archive holds no study');
    return { ok: true };
  }
  if (res.status !== 200) {
    await res.body.dump();
    const hint = res.status === 404 ? ': is DICOMWEB_URL the DICOMweb root (for Orthanc: http://host:8042/dicom-web)?' : '';
    report('fail', 'QIDO-RS', `GET /studies?limit=1 answered HTTP ${res.status}${hint}`);
    return { ok: false };
  }
  let studies: unknown;
  try {
    studies = JSON.parse((await res.body.text()) || '[]');
  } catch {
    report('fail', 'QIDO-RS', 'GET /studies?limit=1 answered HTTP 200 but not with DICOM JSON');
    return { ok: false };
  }
  if (!Array.isArray(studies)) {
    report('fail', 'QIDO-RS', 'GET /studies?limit=1 answered HTTP 200 but not with a JSON array');
    return { ok: false };
  }
  const study = studies.length > 0 ? str(studies[0] as DicomJson, Tag.StudyInstanceUID) : undefined;
  report('pass', 'QIDO-RS', `GET /studies?limit=1 answered HTTP 200 with ${studies.length} ${studies.length === 1 ? 'study' : 'studies'}`);
  return { ok: true, study };
}

async function firstInstance(http: PacsHttp, root: string, studyUid: string, deadline: () => AbortSignal): Promise<InstanceLocator | undefined> {
  try {
    const { json } = await http.getJson<DicomJson[]>(`${root}/studies/${encodeURIComponent(studyUid)}/instances?limit=1`, deadline());
    const first = json?.[0];
    const seriesUid = first && str(first, Tag.SeriesInstanceUID);
    const sopUid = first && str(first, Tag.SOPInstanceUID);
    return seriesUid && sopUid ? { studyUid, seriesUid, sopUid } : undefined;
  } catch {
    return undefined; // the retrieve check says the study has no instance it could try
  }
}

/** Opens one instance, reads just past the Part 10 preamble, and abandons the rest of the transfer. */
async function checkRetrieve(
  name: string,
  pacs: PacsClient,
  study: string | undefined,
  instance: InstanceLocator | undefined,
  deadline: () => AbortSignal,
  report: Report,
): Promise<void> {
  if (!study) {
    report('pass', name, 'not tried: the archive holds no study, so there is nothing to retrieve');
    return;
  }
  if (!instance) {
    report('fail', name, `QIDO listed study ${study} but no instance of it`);
    return;
  }
  const stop = new AbortController();
  const started = performance.now();
  try {
    const stream = await pacs.openInstance(instance, AbortSignal.any([stop.signal, deadline()]));
    const head = await readHead(stream.body, 132);
    const ms = Math.round(performance.now() - started);
    const size = stream.length !== undefined ? `${stream.length} bytes` : 'size not declared';
    if (head.length < 132 || head.toString('latin1', 128, 132) !== 'DICM') {
      report('fail', name, `instance ${instance.sopUid} did not start like a DICOM Part 10 file (no "DICM" at byte 128)`);
    } else {
      report('pass', name, `instance ${instance.sopUid} (${size}) started arriving in ${ms} ms; read its first 132 bytes ("DICM" present) and stopped`);
    }
  } catch (err) {
    report('fail', name, `could not retrieve instance ${instance.sopUid}: ${errorMessage(err)}`);
  } finally {
    stop.abort();
  }
}

async function readHead(body: Readable, bytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  try {
    for await (const chunk of body) {
      chunks.push(chunk as Buffer);
      got += (chunk as Buffer).length;
      if (got >= bytes) break; // leaving the loop destroys the stream
    }
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks).subarray(0, bytes);
}

/**
 * STOW-RS without storing: an empty body that is not multipart/related can never become an instance.
 * Orthanc 1.10 / DICOMweb 1.7 answers 415 to it (401 with wrong credentials, before looking at the body);
 * any answer that shows the endpoint exists and took our credentials counts as reachable.
 */
async function checkStow(root: string, http: PacsHttp, deadline: () => AbortSignal, report: Report): Promise<void> {
  let status: number;
  try {
    const res = await http.request(`${root}/studies`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', accept: 'application/dicom+json' },
      body: '',
      signal: deadline(),
    });
    status = res.status;
    await res.body.dump();
  } catch (err) {
    if (err instanceof PacsError && err.kind === 'unauthorized') {
      report('fail', 'STOW-RS', `the PACS refused to let these credentials store (HTTP ${err.status}): the account may be read-only`);
    } else {
      report('fail', 'STOW-RS', `POST /studies: ${errorMessage(err)}`);
    }
    return;
  }
  const probe = 'POST /studies with an empty non-DICOM body';
  if ([400, 406, 409, 411, 415, 422].includes(status) || (status >= 200 && status < 300)) {
    report('pass', 'STOW-RS', `endpoint answers (${probe}: HTTP ${status}); nothing was stored`);
  } else if (status === 404 || status === 405 || status === 501) {
    report('fail', 'STOW-RS', `${probe} answered HTTP ${status}: this archive does not accept STOW-RS at ${printableUrl(root)}/studies`);
  } else {
    report('fail', 'STOW-RS', `${probe} answered HTTP ${status}`);
  }
}

/**
 * Which path the gateway takes, with createPacs's own reasoning (read from the log line it writes), and
 * whether ORTHANC_URL is an Orthanc whatever PACS_FLAVOR says.
 */
async function checkFlavor(config: Config, http: PacsHttp, report: Report): Promise<{ pacs?: PacsClient; isOrthanc: boolean }> {
  const lines: string[] = [];
  const capture = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
  const auto = await createPacs({ ...config, pacsFlavor: 'auto' }, http, capture);
  const said = parseLogLine(lines.at(-1));
  const why = auto.flavor === 'orthanc' ? `Orthanc ${String(said.orthancVersion ?? '?')} answered ${config.orthancUrl}/system` : String(said.reason ?? 'no Orthanc recognised');
  const isOrthanc = auto.flavor === 'orthanc';
  if (config.pacsFlavor === 'auto') {
    report('pass', 'PACS flavor', `auto chooses ${auto.flavor} (${why})`);
    return { pacs: auto, isOrthanc };
  }
  if (config.pacsFlavor === 'orthanc' && !isOrthanc) {
    report('fail', 'PACS flavor', `PACS_FLAVOR=orthanc but ${why}: set ORTHANC_URL to Orthanc's REST root, or PACS_FLAVOR=dicomweb`);
    return { isOrthanc };
  }
  const note = auto.flavor === config.pacsFlavor ? 'auto would choose the same' : `auto would choose ${auto.flavor}: ${why}`;
  report('pass', 'PACS flavor', `PACS_FLAVOR=${config.pacsFlavor} (${note})`);
  return { pacs: config.pacsFlavor === 'orthanc' ? auto : new DicomwebPacs(config.dicomwebUrl, http, config.qidoPageSize), isOrthanc };
}

function parseLogLine(line: string | undefined): Record<string, unknown> {
  try {
    return line ? (JSON.parse(line) as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/**
 * The PACS's clock from its HTTP Date header or, since Orthanc sends none, from Orthanc's /tools/now (UTC,
 * whole seconds). Both have one-second resolution: the middle of that second is compared with the middle
 * of our request.
 */
async function checkClock(
  config: Config,
  http: PacsHttp,
  fromHeader: { date: string; sentAt: number; receivedAt: number } | undefined,
  isOrthanc: boolean,
  deadline: () => AbortSignal,
  report: Report,
): Promise<void> {
  let skewMs: number | undefined;
  let source = '';
  const headerTime = fromHeader ? Date.parse(fromHeader.date) : NaN;
  if (fromHeader && Number.isFinite(headerTime)) {
    skewMs = headerTime + 500 - (fromHeader.sentAt + fromHeader.receivedAt) / 2;
    source = 'HTTP Date header';
  } else if (isOrthanc) {
    try {
      const sentAt = Date.now();
      const res = await http.request(`${config.orthancUrl}/tools/now`, { headers: { accept: 'text/plain' }, signal: deadline() });
      const text = (await res.body.text()).trim();
      const receivedAt = Date.now();
      const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})$/.exec(text);
      if (res.status === 200 && m) {
        const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
        skewMs = Date.UTC(y, mo - 1, d, h, mi, s) + 500 - (sentAt + receivedAt) / 2;
        source = "Orthanc's /tools/now";
      }
    } catch {
      // measured below as "could not measure"
    }
  }
  if (skewMs === undefined) {
    report('warn', 'clock skew', 'could not measure: the PACS sends no Date header and is not an Orthanc with /tools/now; check NTP on this machine');
    return;
  }
  const seconds = Math.abs(skewMs) / 1000;
  const direction = skewMs > 0 ? 'ahead of' : 'behind';
  const said = seconds < 1.5 ? `within 1 s of ours (${source})` : `${seconds.toFixed(0)} s ${direction} ours (${source})`;
  if (seconds > TIMESTAMP_TOLERANCE_SECONDS) {
    report('fail', 'clock skew', `the PACS clock is ${said}: more than the ±${TIMESTAMP_TOLERANCE_SECONDS} s Avara's signed webhooks are accepted in; one of the clocks is wrong, check NTP`);
  } else if (seconds > 60) {
    report('warn', 'clock skew', `the PACS clock is ${said}; signed webhooks are refused beyond ±${TIMESTAMP_TOLERANCE_SECONDS} s of this machine's clock, check NTP`);
  } else {
    report('pass', 'clock skew', `the PACS clock is ${said}`);
  }
}

function checkDataDir(dataDir: string, report: Report): void {
  const dir = path.resolve(dataDir);
  if (!existsSync(dir)) {
    let parent = path.dirname(dir);
    while (!existsSync(parent) && parent !== path.dirname(parent)) parent = path.dirname(parent);
    try {
      accessSync(parent, constants.W_OK);
      report('pass', 'DATA_DIR', `${dir} does not exist yet; the gateway will create it (${parent} is writable)`);
    } catch {
      report('fail', 'DATA_DIR', `${dir} does not exist and ${parent} is not writable, so the gateway cannot create it`);
    }
    return;
  }
  if (!statSync(dir).isDirectory()) {
    report('fail', 'DATA_DIR', `${dir} is not a directory`);
    return;
  }
  // access(W_OK) does not see every reason a write fails (e.g. a full disk): write and remove a small file.
  const probe = path.join(dir, `.doctor-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    writeFileSync(probe, 'avara-gateway doctor\n');
    unlinkSync(probe);
  } catch (err) {
    report('fail', 'DATA_DIR', `${dir} is not writable: ${(err as { code?: string }).code ?? errorMessage(err)}`);
    return;
  }
  const store = path.join(dir, 'gateway.sqlite');
  if (existsSync(store)) {
    try {
      accessSync(store, constants.R_OK | constants.W_OK);
    } catch {
      report('fail', 'DATA_DIR', `${store} exists but is not writable by this user`);
      return;
    }
  }
  const fs = statfsSync(dir);
  const free = fs.bavail * fs.bsize;
  const freeText = `${(free / 1024 ** 3).toFixed(1)} GiB free`;
  const storeText = existsSync(store) ? 'store gateway.sqlite present' : 'no store yet';
  if (free < LOW_DISK_BYTES) report('warn', 'DATA_DIR', `${dir} is writable but only ${freeText}; ${storeText}`);
  else report('pass', 'DATA_DIR', `${dir} is writable (${freeText}; ${storeText})`);
}

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/env.js';
import { buildGateway } from '../gateway.js';
import { createLogger } from '../observability/logger.js';
import { sign } from '../webhooks/signature.js';
import { ensureDebianPackages, freePort, ORTHANC_INSTALL_HINT, orthancInstalled, startLocalOrthanc, type LocalOrthanc } from './local-orthanc.js';
import { sampleStudy } from './sample-study.js';

/**
 * `npm run demo`: a local Orthanc (configured from orthanc-config/, with its credentials), a generated
 * sample study, the gateway, one correctly signed study.access_requested, one link downloaded and checked.
 * Then it keeps running until Ctrl-C, which stops everything it started. `--once` stops right after the
 * checks (CI uses it).
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const hex = (n: number) => randomBytes(n).toString('hex');
const say = (line = '') => process.stdout.write(`${line}\n`);

export async function runDemo(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      once: { type: 'boolean', default: false },
      'no-install': { type: 'boolean', default: false },
      port: { type: 'string' },
      dir: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    say('usage: avara-gateway demo [--once] [--no-install] [--port 8080] [--dir .demo]');
    return 0;
  }
  const dir = path.resolve(values.dir ?? path.join(ROOT, '.demo'));
  mkdirSync(dir, { recursive: true });

  say('avara-gateway demo');
  say('==================');
  ensureOrthanc(!values['no-install']);

  const orthancConfig = JSON.parse(readFileSync(path.join(ROOT, 'orthanc-config/orthanc.json'), 'utf8')) as {
    RegisteredUsers: Record<string, string>;
  };
  const [username, password] = Object.entries(orthancConfig.RegisteredUsers)[0]!;
  say(`1. Starting Orthanc (Debian package, DICOMweb plugin, configured from orthanc-config/orthanc.json)…`);
  const orthanc: LocalOrthanc = await startLocalOrthanc({
    dir: path.join(dir, 'orthanc'),
    httpPort: await freePort(8042),
    credentials: { username, password },
    extra: { Name: 'avara-gateway-demo', StableAge: 2 },
  });
  say(`   Orthanc ${orthanc.url} (user ${username}), DICOMweb at ${orthanc.dicomwebUrl}; log ${path.relative(process.cwd(), orthanc.logPath)}`);

  let server: Server | undefined;
  let closeGateway: (() => Promise<void>) | undefined;
  const stopAll = async () => {
    if (server) await new Promise<void>((r) => server!.close(() => r()));
    server?.closeAllConnections();
    await closeGateway?.();
    await orthanc.stop();
  };
  try {
    say('2. Loading a generated sample study (2 series x 5 CT slices of a phantom, no patient data)…');
    const study = sampleStudy();
    const authHeader = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
    for (const inst of study) {
      const res = await fetch(`${orthanc.url}/instances`, { method: 'POST', body: new Uint8Array(inst.bytes), headers: { authorization: authHeader, 'content-type': 'application/dicom' } });
      if (!res.ok) throw new Error(`Orthanc refused a sample instance: HTTP ${res.status}`);
    }
    const studyUid = study[0]!.studyUid;
    say(`   StudyInstanceUID ${studyUid} (${study.length} instances)`);

    const port = values.port ? Number(values.port) : await freePort(8080);
    const env = {
      PORT: String(port),
      HOST: '127.0.0.1',
      PUBLIC_BASE_URL: `http://localhost:${port}`,
      AVARA_WEBHOOK_SECRET: `whsec_${randomBytes(32).toString('base64')}`,
      URL_SIGNING_SECRET: randomBytes(32).toString('hex'),
      DICOMWEB_URL: orthanc.dicomwebUrl,
      DICOMWEB_USERNAME: username,
      DICOMWEB_PASSWORD: password,
      DATA_DIR: path.join(dir, 'data'),
      LOG_LEVEL: 'info',
    };
    const envFile = path.join(dir, 'demo.env');
    writeFileSync(envFile, Object.entries(env).map(([k, v]) => `${k}=${v}`).join('\n') + '\n', { mode: 0o600 });
    const config = loadConfig(env);
    const logFile = path.join(dir, 'gateway.log');
    const { default: pino } = await import('pino');
    const log = createLogger(config.logLevel, pino.destination({ dest: logFile, sync: false }));
    say('3. Starting the gateway…');
    const gateway = await buildGateway(config, log);
    closeGateway = () => gateway.close();
    server = await new Promise<Server>((resolve, reject) => {
      const s = gateway.app.listen(config.port, config.host, () => resolve(s)).on('error', reject);
    });
    const base = `http://localhost:${port}`;
    say(`   gateway ${base} (PACS path: ${gateway.pacs.flavor}); JSON log ${path.relative(process.cwd(), logFile)}; settings ${path.relative(process.cwd(), envFile)}`);

    say('4. Playing Avara: a signed study.access_requested…');
    const event = { id: `whe_${hex(16)}`, type: 'study.access_requested', data: { studyId: `stu_${hex(16)}`, studyInstanceUid: studyUid } };
    const body = JSON.stringify(event);
    const ts = Math.floor(Date.now() / 1000);
    const res = await fetch(`${base}/webhooks/avara`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'webhook-id': event.id, 'webhook-timestamp': String(ts), 'webhook-signature': sign(env.AVARA_WEBHOOK_SECRET, event.id, ts, body) },
      body,
    });
    const answer = (await res.json()) as { authorized: boolean; urls: string[]; error?: string };
    if (!answer.authorized) throw new Error(`the gateway refused access: ${answer.error ?? res.status}`);
    say(`   HTTP ${res.status}: authorized, ${answer.urls.length} signed links (valid ${config.urlTtlSeconds} s), e.g.`);
    say(`   ${answer.urls[0]!.slice(0, 110)}…`);

    say('5. Downloading one link, as Avara\'s viewer would…');
    const dl = await fetch(answer.urls[0]!);
    const bytes = Buffer.from(await dl.arrayBuffer());
    const original = study.find((s) => bytes.includes(Buffer.from(s.sopUid)));
    const identical = original !== undefined && original.bytes.equals(bytes);
    say(`   HTTP ${dl.status}, ${dl.headers.get('content-type')}, ${bytes.length} bytes, DICM at 128: ${bytes.subarray(128, 132).toString() === 'DICM'}, identical to what was stored: ${identical}`);
    if (dl.status !== 200 || !identical) throw new Error('the downloaded instance is not the stored one');

    say('');
    say('It works. Try next (in another terminal):');
    say(`   curl -s ${base}/readyz            # PACS reachable, DATA_DIR writable`);
    say(`   curl -s ${base}/metrics | grep avara_`);
    say(`   set -a; . ${path.relative(process.cwd(), envFile)}; set +a`);
    say(`   npx avara-gateway simulate study.access_requested --study-instance-uid ${studyUid}`);
    say(`   npx avara-gateway audit --study ${studyUid}`);
    say(`   curl -s -o /dev/null -w '%{http_code}\\n' '${answer.urls[0]!.slice(0, -4)}xxxx'   # a tampered link: 403`);
    say(`   Orthanc's own UI: ${orthanc.url}/app/explorer.html (${username} / ${password})`);
    if (values.once) {
      await stopAll();
      say('Stopped (--once).');
      return 0;
    }
    say('');
    say('Running. Ctrl-C stops the gateway and Orthanc.');
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    say('\nStopping…');
    await stopAll();
    say('Stopped: the gateway and Orthanc are down (their data stays in ' + path.relative(process.cwd(), dir) + ').');
    return 0;
  } catch (err) {
    await stopAll().catch(() => {});
    throw err;
  }
}

/** Orthanc from Debian's packages: installed when missing and this machine allows it, else exact instructions. */
function ensureOrthanc(mayInstall: boolean): void {
  if (orthancInstalled()) return;
  if (mayInstall && ensureDebianPackages(['orthanc', 'orthanc-dicomweb'], orthancInstalled, (l) => say(`0. Orthanc is not installed: ${l} (about 10 s)…`))) return;
  if (dockerAnswers()) {
    throw new Error(
      'Orthanc is not installed here, but a container engine answers: run "docker compose -f docker/docker-compose.yml up" (Orthanc + the gateway), or install Orthanc: ' +
        ORTHANC_INSTALL_HINT,
    );
  }
  throw new Error(`Orthanc is not installed. Install it with: sudo ${ORTHANC_INSTALL_HINT}   (Debian/Ubuntu), then run npm run demo again.`);
}

function dockerAnswers(): boolean {
  try {
    execFileSync('docker', ['info'], { stdio: 'ignore', timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  runDemo(process.argv.slice(2))
    .then((code) => process.exit(code))
    .catch((err: unknown) => {
      process.stderr.write(`demo: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    });
}

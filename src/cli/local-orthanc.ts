import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';

/**
 * Runs Debian's Orthanc binary with the DICOMweb plugin on this machine: for `npm run demo` and for the
 * integration tests (test/support/orthanc.ts), so both start the PACS the same way.
 */
export const ORTHANC_BINARY = '/usr/sbin/Orthanc';
const PLUGIN_DIR = '/usr/lib/orthanc';

/** Debian names the plugin after its version (libOrthancDicomWeb.so.1.7); take whichever is installed. */
export function findDicomwebPlugin(): string | undefined {
  try {
    const found = readdirSync(PLUGIN_DIR)
      .filter((f) => f.startsWith('libOrthancDicomWeb.so'))
      .sort();
    return found.length > 0 ? path.join(PLUGIN_DIR, found[found.length - 1]!) : undefined;
  } catch {
    return undefined;
  }
}

export function orthancInstalled(): boolean {
  return existsSync(ORTHANC_BINARY) && findDicomwebPlugin() !== undefined;
}

export const ORTHANC_INSTALL_HINT = 'apt-get install -y --no-install-recommends orthanc orthanc-dicomweb';

/**
 * Installs Debian packages when `present()` says they are missing and this machine allows it (root,
 * apt-get). Returns false when they are still missing; the caller explains what to install.
 */
export function ensureDebianPackages(packages: string[], present: () => boolean, log: (line: string) => void = () => {}): boolean {
  if (present()) return true;
  if (process.getuid?.() !== 0 || !existsSync('/usr/bin/apt-get')) return false;
  log(`installing Debian packages: ${packages.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update', '-qq'], ['install', '-y', '-qq', '--no-install-recommends', ...packages]]) {
    const r = spawnSync('apt-get', args, { stdio: 'inherit', env });
    if (r.status !== 0) return false;
  }
  return present();
}

export async function freePort(preferred?: number): Promise<number> {
  const tryPort = (port: number) =>
    new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.unref();
      srv.on('error', reject);
      srv.listen(port, '127.0.0.1', () => {
        const { port: got } = srv.address() as { port: number };
        srv.close(() => resolve(got));
      });
    });
  if (preferred !== undefined) {
    try {
      return await tryPort(preferred);
    } catch {
      // taken: any free port will do
    }
  }
  return tryPort(0);
}

export interface LocalOrthancOptions {
  /** Working directory: configuration, storage and log go here. */
  dir: string;
  httpPort?: number;
  credentials?: { username: string; password: string };
  /** Keys merged over the defaults (e.g. from orthanc-config/orthanc.json). */
  extra?: Record<string, unknown>;
}

export interface LocalOrthanc {
  url: string;
  dicomwebUrl: string;
  logPath: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Orthanc's configuration with DICOMweb on, for one HTTP port and storage directory; `extra` keys win. */
export function orthancConfig(o: {
  httpPort: number;
  dicomPort: number;
  storage: string;
  plugins: string[];
  credentials?: { username: string; password: string };
  extra?: Record<string, unknown>;
}): Record<string, unknown> {
  return {
    Name: 'avara-gateway-local',
    HttpPort: o.httpPort,
    DicomPort: o.dicomPort,
    StorageDirectory: o.storage,
    IndexDirectory: o.storage,
    RemoteAccessAllowed: true,
    AuthenticationEnabled: Boolean(o.credentials),
    RegisteredUsers: o.credentials ? { [o.credentials.username]: o.credentials.password } : {},
    Plugins: o.plugins,
    ...o.extra,
    DicomWeb: { Enable: true, Root: '/dicom-web/', EnableWado: true, WadoRoot: '/wado', Ssl: false, ...(o.extra?.DicomWeb as object | undefined) },
  };
}

export async function startLocalOrthanc(opts: LocalOrthancOptions): Promise<LocalOrthanc> {
  const plugin = findDicomwebPlugin();
  if (!existsSync(ORTHANC_BINARY) || !plugin) {
    throw new Error(`Orthanc with its DICOMweb plugin is not installed (needs ${ORTHANC_BINARY} and ${PLUGIN_DIR}/libOrthancDicomWeb.so*): ${ORTHANC_INSTALL_HINT}`);
  }
  mkdirSync(opts.dir, { recursive: true });
  const httpPort = opts.httpPort ?? (await freePort());
  const dicomPort = await freePort();
  const storage = path.join(opts.dir, 'storage');
  const config = orthancConfig({ httpPort, dicomPort, storage, plugins: [plugin], credentials: opts.credentials, extra: opts.extra });
  const configPath = path.join(opts.dir, 'orthanc.json');
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  const logPath = path.join(opts.dir, 'orthanc.log');
  const child = spawn(ORTHANC_BINARY, [`--logfile=${logPath}`, configPath], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${httpPort}`;
  let exited = false;
  child.on('exit', () => {
    exited = true;
  });
  const auth: Record<string, string> = opts.credentials
    ? { authorization: `Basic ${Buffer.from(`${opts.credentials.username}:${opts.credentials.password}`).toString('base64')}` }
    : {};
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error(`Orthanc exited during start; its log:\n${tail(logPath)}`);
    try {
      if ((await fetch(`${url}/system`, { headers: auth })).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`Orthanc at ${url} did not answer /system within 30 s; its log:\n${tail(logPath)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    dicomwebUrl: `${url}/dicom-web`,
    logPath,
    child,
    async stop() {
      if (exited) return;
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          child.kill('SIGKILL');
          resolve();
        }, 5000);
        child.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
      });
    },
  };
}

function tail(p: string): string {
  try {
    return readFileSync(p, 'utf8').slice(-4000);
  } catch {
    return '(no log)';
  }
}

import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { freePort, orthancConfig, startLocalOrthanc } from '../../src/cli/local-orthanc.js';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * A real Orthanc for integration tests, each with its own storage and free ports. Where a container engine
 * answers, testcontainers runs the jodogne/orthanc-plugins image; otherwise (our machines and CI) the Debian binary.
 * ORTHANC_TEST_MODE=binary|container forces one.
 */
export interface TestOrthanc {
  /** Orthanc's REST root, e.g. http://127.0.0.1:41234 */
  url: string;
  /** DICOMweb root, e.g. http://127.0.0.1:41234/dicom-web */
  dicomwebUrl: string;
  username?: string;
  password?: string;
  /** POSTs a Part 10 file to /instances; returns Orthanc's instance id. */
  upload(file: string | Buffer): Promise<string>;
  /** Orthanc's stored bytes for an instance. */
  storedFile(orthancId: string): Promise<Buffer>;
  /** Stops the server and removes its storage. */
  stop(): Promise<void>;
  /** Kills the server at once (SIGKILL), as a crash would; storage is kept until stop(). */
  kill(): void;
  /** Freezes the process so it accepts connections but never answers (a slow PACS). */
  pause(): void;
  resume(): void;
}

export { freePort };

export interface OrthancOptions {
  /** Require HTTP basic auth with these credentials. */
  credentials?: { username: string; password: string };
  /** Extra configuration keys merged over the defaults. */
  extra?: Record<string, unknown>;
}

export async function startOrthanc(opts: OrthancOptions = {}): Promise<TestOrthanc> {
  const mode = process.env.ORTHANC_TEST_MODE ?? 'auto';
  if (mode === 'container' || (mode === 'auto' && (await containerEngineAnswers()))) {
    return startContainer(opts);
  }
  return startBinary(opts);
}

const TEST_SETTINGS = { Name: 'avara-gateway-test', StableAge: 1, HttpTimeout: 60 };

async function startBinary(opts: OrthancOptions): Promise<TestOrthanc> {
  const dir = mkdtempSync(path.join(tmpdir(), 'avara-orthanc-'));
  const local = await startLocalOrthanc({ dir, credentials: opts.credentials, extra: { ...TEST_SETTINGS, ...opts.extra } });
  return handle(local.url, opts, {
    async stop() {
      await local.stop();
      rmSync(dir, { recursive: true, force: true });
    },
    pause: () => local.child.kill('SIGSTOP'),
    resume: () => local.child.kill('SIGCONT'),
    kill: () => local.child.kill('SIGKILL'),
  });
}

async function containerEngineAnswers(): Promise<boolean> {
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await Promise.race([getContainerRuntimeClient(), new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 3000))]);
    return true;
  } catch {
    return false;
  }
}

async function startContainer(opts: OrthancOptions): Promise<TestOrthanc> {
  const { GenericContainer, Wait } = await import('testcontainers');
  // jodogne/orthanc-plugins reads /etc/orthanc/orthanc.json and keeps its plugins in /usr/share/orthanc/plugins.
  const image = process.env.ORTHANC_IMAGE ?? 'jodogne/orthanc-plugins:1.12.5';
  const config = orthancConfig({
    httpPort: 8042,
    dicomPort: 4242,
    storage: '/var/lib/orthanc/db',
    plugins: ['/usr/share/orthanc/plugins'],
    credentials: opts.credentials,
    extra: { ...TEST_SETTINGS, ...opts.extra },
  });
  const container = await new GenericContainer(image)
    .withExposedPorts(8042)
    .withCopyContentToContainer([{ content: JSON.stringify(config), target: '/etc/orthanc/orthanc.json' }])
    .withWaitStrategy(Wait.forHttp('/system', 8042).forStatusCode(opts.credentials ? 401 : 200))
    .start();
  const url = `http://${container.getHost()}:${container.getMappedPort(8042)}`;
  await waitReady(url, opts, () => undefined);
  return handle(url, opts, {
    async stop() {
      await container.stop();
    },
    pause: () => void container.exec(['kill', '-STOP', '1']),
    resume: () => void container.exec(['kill', '-CONT', '1']),
    kill: () => void container.exec(['kill', '-KILL', '1']),
  });
}

function authHeaders(opts: OrthancOptions): Record<string, string> {
  return opts.credentials
    ? { authorization: `Basic ${Buffer.from(`${opts.credentials.username}:${opts.credentials.password}`).toString('base64')}` }
    : {};
}

async function waitReady(url: string, opts: OrthancOptions, failed: () => string | undefined): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const why = failed();
    if (why) throw new Error(why);
    try {
      const res = await fetch(`${url}/system`, { headers: authHeaders(opts) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`Orthanc at ${url} did not answer /system within 30 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function handle(url: string, opts: OrthancOptions, control: Pick<TestOrthanc, 'stop' | 'pause' | 'resume' | 'kill'>): TestOrthanc {
  const headers = authHeaders(opts);
  return {
    url,
    dicomwebUrl: `${url}/dicom-web`,
    username: opts.credentials?.username,
    password: opts.credentials?.password,
    async upload(file) {
      const body = typeof file === 'string' ? readFileSync(file) : file;
      const res = await fetch(`${url}/instances`, { method: 'POST', body: new Uint8Array(body), headers: { ...headers, 'content-type': 'application/dicom' } });
      if (!res.ok) throw new Error(`Orthanc refused the upload: HTTP ${res.status} ${await res.text()}`);
      const json = (await res.json()) as { ID: string };
      return json.ID;
    },
    async storedFile(orthancId) {
      const res = await fetch(`${url}/instances/${orthancId}/file`, { headers });
      if (!res.ok) throw new Error(`Orthanc /instances/${orthancId}/file: HTTP ${res.status}`);
      return Buffer.from(await res.arrayBuffer());
    },
    ...control,
  };
}

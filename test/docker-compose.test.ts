import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import ts from 'typescript';
import { parse as parseYaml } from 'yaml';
import { KNOWN_ENV_VARS, loadConfig } from '../src/config/env.js';

/**
 * No container engine runs on our machines, so docker/ is checked against the code instead: every name,
 * port, path, credential and variable the compose file and the Dockerfile rely on must agree with what the
 * gateway, its configuration schema and orthanc-config/orthanc.json say.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DOCKER = path.join(ROOT, 'docker');

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  environment?: Record<string, string | number | boolean>;
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  stop_grace_period?: string;
}
const compose = parseYaml(readFileSync(path.join(DOCKER, 'docker-compose.yml'), 'utf8')) as {
  services: Record<string, ComposeService>;
  volumes: Record<string, unknown>;
};
const gateway = compose.services.gateway!;
const orthanc = compose.services.orthanc!;
const orthancJson = JSON.parse(readFileSync(path.join(ROOT, 'orthanc-config/orthanc.json'), 'utf8')) as {
  HttpPort: number;
  AuthenticationEnabled: boolean;
  RegisteredUsers: Record<string, string>;
  StorageDirectory: string;
  IndexDirectory: string;
  Plugins: string[];
  DicomWeb: { Enable: boolean; Root: string };
};

/** Placeholders for what compose interpolates from docker/.env: realistic, valid, and obviously not real. */
const PLACEHOLDERS: Record<string, string> = {
  PUBLIC_BASE_URL: 'https://avara-gateway.hospital.example',
  AVARA_WEBHOOK_SECRET: `whsec_${Buffer.from('placeholder-webhook-secret-32-bytes!').toString('base64')}`,
  URL_SIGNING_SECRET: 'placeholder-url-signing-secret-0123456789abcdef',
};

/** Compose interpolation (${VAR}, ${VAR:-default}, ${VAR:?message}, $$), enough for this file. */
function interpolate(value: string, vars: Record<string, string>): string {
  return value.replace(/\$\$|\$\{([A-Z0-9_]+)(?:(:?[-?])([^}]*))?\}/g, (whole, name: string | undefined, op: string | undefined, arg: string | undefined) => {
    if (whole === '$$') return '$';
    const v = vars[name!];
    if (v !== undefined && v !== '') return v;
    if (op?.endsWith('?')) throw new Error(`required variable ${name} is missing: ${arg}`);
    if (op?.endsWith('-')) return arg ?? '';
    return '';
  });
}

function gatewayEnv(vars: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(gateway.environment ?? {}).map(([k, v]) => [k, interpolate(String(v), vars)]));
}

/** Dockerfile instructions per stage, line continuations joined, comments dropped. */
function dockerfileStages(): Array<{ from: string; name?: string; instructions: Array<{ op: string; args: string }> }> {
  const text = readFileSync(path.join(DOCKER, 'Dockerfile'), 'utf8');
  const logical = text
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const stages: ReturnType<typeof dockerfileStages> = [];
  for (const line of logical) {
    const [, op, args] = /^(\S+)\s+(.*)$/.exec(line) ?? [];
    if (!op) continue;
    if (op.toUpperCase() === 'FROM') {
      const [, from, name] = /^(\S+)(?:\s+AS\s+(\S+))?/i.exec(args!)!;
      stages.push({ from: from!, name, instructions: [] });
    } else {
      stages.at(-1)?.instructions.push({ op: op.toUpperCase(), args: args!.replace(/\s+/g, ' ') });
    }
  }
  return stages;
}
const stages = dockerfileStages();

/** What tsconfig.json compiles into dist/: src/**\/*.ts but the specs and declaration files. */
function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(full);
    return e.name.endsWith('.ts') && !e.name.endsWith('.spec.ts') && !e.name.endsWith('.d.ts') ? [full] : [];
  });
}
const runtime = stages.at(-1)!;
const ins = (op: string) => runtime.instructions.filter((i) => i.op === op);

describe('docker/docker-compose.yml', () => {
  it('sets only variables the gateway reads', () => {
    const names = Object.keys(gateway.environment ?? {});
    expect(names.length).toBeGreaterThan(0);
    expect(names.filter((n) => !KNOWN_ENV_VARS.includes(n))).toEqual([]);
  });

  it('is a configuration loadConfig accepts, once docker/.env supplies the secrets', () => {
    const config = loadConfig(gatewayEnv(PLACEHOLDERS));
    expect(config.dicomwebUrl).toBe('http://orthanc:8042/dicom-web');
    expect(config.pacsAuth.kind).toBe('basic');
    expect(config.publicBaseUrl).toBe(PLACEHOLDERS.PUBLIC_BASE_URL);
    expect(config.webhookVerify).toBe(true);
    expect(config.dataDir).toBe('/data');
  });

  it('takes every secret from docker/.env and refuses to start without one', () => {
    for (const name of ['AVARA_WEBHOOK_SECRET', 'URL_SIGNING_SECRET', 'PUBLIC_BASE_URL']) {
      expect(String(gateway.environment?.[name])).toMatch(new RegExp(`^\\$\\{${name}:\\?.{10,}\\}$`));
      const { [name]: _omitted, ...rest } = PLACEHOLDERS;
      expect(() => gatewayEnv(rest)).toThrow(`required variable ${name} is missing`);
    }
    // docker/.env.example lists each of them, so an operator knows what to fill in.
    const example = readFileSync(path.join(DOCKER, '.env.example'), 'utf8');
    for (const name of Object.keys(PLACEHOLDERS)) expect(example).toMatch(new RegExp(`^${name}=`, 'm'));
  });

  it("gives the gateway the credentials orthanc-config/orthanc.json registers", () => {
    const env = gatewayEnv(PLACEHOLDERS);
    expect(orthancJson.AuthenticationEnabled).toBe(true);
    expect(env.DICOMWEB_USERNAME).toBeTruthy();
    expect(orthancJson.RegisteredUsers[env.DICOMWEB_USERNAME!]).toBe(env.DICOMWEB_PASSWORD);
  });

  it("points DICOMWEB_URL at the orthanc service's HttpPort and DicomWeb.Root", () => {
    const url = new URL(gatewayEnv(PLACEHOLDERS).DICOMWEB_URL!);
    expect(compose.services[url.hostname]).toBe(orthanc);
    expect(Number(url.port)).toBe(orthancJson.HttpPort);
    expect(orthancJson.DicomWeb.Enable).toBe(true);
    expect(`${url.pathname.replace(/\/+$/, '')}/`).toBe(orthancJson.DicomWeb.Root);
    // PACS_FLAVOR=auto asks the parent of DICOMWEB_URL for /system: Orthanc's REST root on the same port.
    expect(loadConfig(gatewayEnv(PLACEHOLDERS)).orthancUrl).toBe(`http://orthanc:${orthancJson.HttpPort}`);
  });

  it("mounts orthanc-config/orthanc.json read-only where the image reads it, and keeps Orthanc's storage in a volume", () => {
    // jodogne/orthanc-plugins runs `Orthanc /etc/orthanc/` (every *.json there) and keeps plugins in
    // /usr/local/share/orthanc/plugins; pinned, so that this stays true.
    expect(orthanc.image).toMatch(/^jodogne\/orthanc-plugins:\d+\.\d+\.\d+$/);
    const mount = orthanc.volumes!.map((v) => v.split(':')).find(([source]) => source!.endsWith('orthanc.json'));
    expect(mount).toEqual(['../orthanc-config/orthanc.json', '/etc/orthanc/orthanc.json', 'ro']);
    expect(path.resolve(DOCKER, mount![0]!)).toBe(path.join(ROOT, 'orthanc-config/orthanc.json'));
    expect(orthancJson.Plugins).toContain('/usr/local/share/orthanc/plugins');
    const storage = orthanc.volumes!.map((v) => v.split(':')).find(([, target]) => target === orthancJson.StorageDirectory);
    expect(storage, `a volume at ${orthancJson.StorageDirectory}`).toBeDefined();
    expect(orthancJson.IndexDirectory).toBe(orthancJson.StorageDirectory);
    expect(Object.keys(compose.volumes)).toContain(storage![0]);
  });

  it('starts the gateway once Orthanc is healthy', () => {
    expect(gateway.depends_on).toEqual({ orthanc: { condition: 'service_healthy' } });
    expect(orthanc.healthcheck?.test.join(' ')).toContain(`http://127.0.0.1:${orthancJson.HttpPort}/system`);
  });

  it('serves the gateway on the port the Dockerfile exposes, the default PORT', () => {
    const env = gatewayEnv(PLACEHOLDERS);
    const port = loadConfig(env).port;
    expect(port).toBe(loadConfig({ ...PLACEHOLDERS }).port); // what the gateway uses when PORT is unset
    expect(ins('EXPOSE').map((i) => i.args)).toEqual([String(port)]);
    expect(gateway.ports!.map((p) => p.split(':').at(-1))).toEqual([String(port)]);
    expect(gateway.healthcheck?.test.join(' ')).toContain(`http://127.0.0.1:${port}/healthz`);
  });

  it('keeps DATA_DIR in a named volume, and gives in-flight streams time to finish on stop', () => {
    const config = loadConfig(gatewayEnv(PLACEHOLDERS));
    const data = gateway.volumes!.map((v) => v.split(':')).find(([, target]) => target === config.dataDir);
    expect(data).toBeDefined();
    expect(Object.keys(compose.volumes)).toContain(data![0]);
    expect(ins('VOLUME').map((i) => i.args)).toEqual([config.dataDir]);
    const grace = /^(\d+)s$/.exec(gateway.stop_grace_period ?? '');
    expect(Number(grace?.[1]) * 1000).toBeGreaterThan(config.shutdownGraceMs);
  });

  it('builds the image from the repository root with docker/Dockerfile', () => {
    expect(gateway.build).toEqual({ context: '..', dockerfile: 'docker/Dockerfile' });
    expect(existsSync(path.join(path.resolve(DOCKER, gateway.build!.context), gateway.build!.dockerfile))).toBe(true);
  });
});

describe('docker/Dockerfile', () => {
  it('is multi-stage, with a node:20-bookworm-slim runtime', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(runtime.from).toBe('node:20-bookworm-slim');
  });

  it('runs as a non-root user', () => {
    const users = ins('USER').map((i) => i.args.split(':')[0]);
    expect(users.length).toBeGreaterThan(0);
    expect(['root', '0']).not.toContain(users.at(-1));
  });

  it('has a HEALTHCHECK on /healthz made with node (the image has no curl)', () => {
    const [check] = ins('HEALTHCHECK');
    expect(check?.args).toMatch(/CMD \["node", "-e", ".*\/healthz/);
    expect(check?.args).not.toMatch(/curl|wget/);
  });

  it('ships production dependencies only', () => {
    const installs = stages.flatMap((s) => s.instructions.filter((i) => i.op === 'RUN' && /\bnpm (ci|install|i)\b/.test(i.args)).map((i) => ({ stage: s.name, args: i.args })));
    const production = installs.filter((i) => /npm ci --omit=dev/.test(i.args));
    expect(production).toHaveLength(1);
    // The runtime's node_modules come from that stage and nowhere else; nothing is installed in the runtime.
    const modules = ins('COPY').filter((i) => i.args.includes('node_modules'));
    expect(modules.map((i) => i.args)).toEqual([`--from=${production[0]!.stage} /app/node_modules ./node_modules`]);
    expect(installs.filter((i) => i.stage === runtime.name)).toEqual([]);
    expect(installs.some((i) => /npm install\b|npm i\b/.test(i.args))).toBe(false);
  });

  it('needs at run time no package that `npm ci --omit=dev` leaves out', () => {
    // Compiled file by file, so imports used only as types are gone, exactly as in dist/.
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const missing = new Set<string>();
    for (const file of sourceFiles(path.join(ROOT, 'src'))) {
      const js = ts.transpileModule(readFileSync(file, 'utf8'), { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
      for (const { fileName: spec } of ts.preProcessFile(js, true, true).importedFiles) {
        if (spec.startsWith('.') || spec.startsWith('node:') || builtinModules.includes(spec)) continue;
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
        if (!(name in pkg.dependencies)) missing.add(`${name} (${path.relative(ROOT, file)})`);
      }
    }
    expect([...missing]).toEqual([]);
  });

  it('sets DATA_DIR and NODE_ENV, and starts the compiled gateway', () => {
    const env = ins('ENV').map((i) => i.args).join(' ');
    expect(env).toMatch(/\bDATA_DIR=\/data\b/);
    expect(env).toMatch(/\bNODE_ENV=production\b/);
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { main: string; bin: Record<string, string>; type: string };
    expect(ins('CMD').map((i) => i.args)).toEqual([`["node", "${pkg.main}"]`]);
    // tsc (outDir dist, rootDir .) puts src/main.ts at dist/src/main.js; package.json's "type" must ship with it.
    const tsconfig = JSON.parse(readFileSync(path.join(ROOT, 'tsconfig.json'), 'utf8')) as { compilerOptions: { outDir: string; rootDir: string } };
    expect(path.posix.join(tsconfig.compilerOptions.outDir, 'src/main.js')).toBe(pkg.main);
    expect(pkg.type).toBe('module');
    expect(ins('COPY').some((i) => /^package\.json\b/.test(i.args))).toBe(true);
    expect(ins('RUN').some((i) => i.args.includes(`/app/${pkg.bin['avara-gateway']}`))).toBe(true);
  });

  it('is built from an allow-list .dockerignore that keeps secrets and data out', () => {
    const lines = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    expect(lines[0]).toBe('*');
    const allowed = lines.filter((l) => l.startsWith('!')).map((l) => l.slice(1));
    expect(allowed.sort()).toEqual(['package-lock.json', 'package.json', 'src/', 'tsconfig.json']);
    // Everything the Dockerfile copies from the context is allowed.
    const copied = stages.flatMap((s) => s.instructions.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from')).flatMap((i) => i.args.split(' ').slice(0, -1)));
    for (const c of copied) expect(allowed.some((a) => a.replace(/\/$/, '') === c.replace(/\/$/, ''))).toBe(true);
  });
});

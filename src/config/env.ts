import { z } from 'zod';
import { DEFAULT_DESTINATION, parseStowDestinations, type StowDestination } from '../uploads/destinations.js';

/**
 * Every environment variable the gateway reads, in one place. The names are a public contract:
 * deployments, the CLI and docker/docker-compose.yml rely on them.
 */

const bool = (name: string, dflt: boolean) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return dflt;
      const s = v.trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(s)) return true;
      if (['false', '0', 'no', 'off'].includes(s)) return false;
      ctx.addIssue({ code: 'custom', message: `${name} must be true or false, got "${v}"` });
      return z.NEVER;
    });

const int = (min: number, max: number, dflt: number) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return dflt;
      if (!/^\d+$/.test(v.trim())) {
        ctx.addIssue({ code: 'custom', message: `must be a whole number, got "${v}"` });
        return z.NEVER;
      }
      const n = Number(v);
      if (n < min || n > max) {
        ctx.addIssue({ code: 'custom', message: `must be between ${min} and ${max}, got ${n}` });
        return z.NEVER;
      }
      return n;
    });

/** An absolute http: or https: URL. */
export function isHttpUrl(v: string): boolean {
  try {
    const u = new URL(v);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

const httpUrl = z
  .string()
  .trim()
  .refine(isHttpUrl, 'must be an http(s) URL')
  .transform((v) => v.replace(/\/+$/, ''));

const WEBHOOK_SECRET = /^whsec_[A-Za-z0-9+/]+={0,2}$/;

const REPORT_SINK_NAMES = ['pacs', 'dir'] as const;
export type ReportSink = (typeof REPORT_SINK_NAMES)[number];

/** "host", "host:port", "[v6]" or "[v6]:port", lower-cased; no scheme, no path. */
const ALLOWED_HOST = /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])(?::\d{1,5})?$/;

const schema = z
  .object({
    NODE_ENV: z.string().optional().default('development'),
    PORT: int(0, 65535, 8080),
    HOST: z.string().optional().default('0.0.0.0'),
    PUBLIC_BASE_URL: httpUrl.optional(),
    AVARA_WEBHOOK_SECRET: z
      .string()
      .optional()
      .transform((v, ctx) => {
        const secrets = (v ?? '').split(/\s+/).filter(Boolean);
        for (const s of secrets) {
          const raw = WEBHOOK_SECRET.test(s) ? Buffer.from(s.slice(6), 'base64') : Buffer.alloc(0);
          if (raw.length < 16) {
            ctx.addIssue({ code: 'custom', message: 'each secret must be whsec_ followed by base64 of at least 16 bytes' });
            return z.NEVER;
          }
        }
        return secrets;
      }),
    AVARA_WEBHOOK_VERIFY: bool('AVARA_WEBHOOK_VERIFY', true),
    DICOMWEB_URL: httpUrl.default('http://localhost:8042/dicom-web'),
    DICOMWEB_USERNAME: z.string().optional(),
    DICOMWEB_PASSWORD: z.string().optional(),
    DICOMWEB_BEARER_TOKEN: z.string().optional(),
    PACS_FLAVOR: z.enum(['auto', 'dicomweb', 'orthanc'], { error: 'must be auto, dicomweb or orthanc' }).optional().default('auto'),
    ORTHANC_URL: httpUrl.optional(),
    PACS_TIMEOUT_MS: int(100, 600_000, 30_000),
    QIDO_PAGE_SIZE: int(0, 100_000, 0),
    URL_SIGNING_SECRET: z
      .string({ error: 'is required: at least 32 characters (several separated by commas: the first signs, all verify)' })
      .transform((v, ctx) => {
        const secrets = v.split(',').map((s) => s.trim()).filter(Boolean);
        if (secrets.length === 0 || secrets.some((s) => s.length < 32)) {
          ctx.addIssue({ code: 'custom', message: 'each secret must be at least 32 characters' });
          return z.NEVER;
        }
        return secrets;
      }),
    URL_TTL_SECONDS: int(1, 7 * 24 * 3600, 3600),
    SYNC_DEADLINE_MS: int(500, 120_000, 10_000),
    TRUST_PROXY: z
      .string()
      .trim()
      .optional()
      .default('loopback')
      .refine((v) => /^(false|[0-9a-zA-Z:./, ]+)$/.test(v), 'must be false, or addresses, subnets or names (loopback, linklocal, uniquelocal) separated by commas'),
    CORS_ALLOWED_ORIGINS: z
      .string()
      .optional()
      .transform((v) => (v === undefined || v.trim() === '' || v.trim() === '*' ? '*' : v.split(',').map((s) => s.trim()).filter(Boolean))),
    STUDY_CACHE_SECONDS: int(0, 3600, 30),
    DATA_DIR: z.string().optional().default('./data'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional().default('info'),
    SHUTDOWN_GRACE_MS: int(0, 600_000, 10_000),
    // Secondary capture uploads (src/uploads). STOW_DESTINATIONS and its STOW_<NAME>_* credentials are
    // read by parseStowDestinations: their names depend on the destination names.
    STOW_DESTINATIONS: z.string().optional(),
    UPLOAD_URL_TTL_SECONDS: int(1, 7 * 24 * 3600, 900),
    MAX_UPLOAD_BYTES: int(64 * 1024, 64 * 1024 ** 3, 1024 ** 3),
    // Report delivery (src/reports): journal, download, filing.
    REPORT_SINKS: z
      .string()
      .optional()
      .transform((v, ctx) => {
        const sinks = [...new Set((v === undefined || v.trim() === '' ? 'pacs,dir' : v).split(',').map((s) => s.trim().toLowerCase()).filter(Boolean))];
        const unknown = sinks.filter((s) => !(REPORT_SINK_NAMES as readonly string[]).includes(s));
        if (unknown.length > 0 || sinks.length === 0) {
          ctx.addIssue({ code: 'custom', message: `must be a comma-separated list of ${REPORT_SINK_NAMES.join(', ')}${unknown.length ? `; unknown: ${unknown.join(', ')}` : ''}` });
          return z.NEVER;
        }
        return sinks as ReportSink[];
      }),
    REPORT_DOWNLOAD_ALLOWED_HOSTS: z
      .string()
      .optional()
      .transform((v, ctx) => {
        const hosts = (v ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
        const bad = hosts.filter((h) => !ALLOWED_HOST.test(h));
        if (bad.length > 0) {
          ctx.addIssue({ code: 'custom', message: `each entry must be host or host:port (no scheme, no path); not understood: ${bad.join(', ')}` });
          return z.NEVER;
        }
        return hosts;
      }),
    REPORT_MAX_BYTES: int(1024, 2 * 1024 * 1024 * 1024, 100 * 1024 * 1024),
    REPORT_DOWNLOAD_WINDOW_SECONDS: int(1, 7 * 24 * 3600, 3600),
    REPORT_DOWNLOAD_TIMEOUT_MS: int(1000, 3_600_000, 120_000),
    REPORT_FILING_WINDOW_SECONDS: int(1, 90 * 24 * 3600, 7 * 24 * 3600),
    REPORT_RETRY_BASE_MS: int(1, 3_600_000, 5_000),
    REPORT_RETRY_MAX_MS: int(1, 24 * 3_600_000, 300_000),
    REPORT_WORKER_CONCURRENCY: int(1, 64, 4),
    REPORT_POLL_MS: int(10, 600_000, 5_000),
    // Not httpUrl: its trailing-slash trim would change the address the receiver registered.
    CRITICAL_REPORT_WEBHOOK_URL: z
      .string()
      .trim()
      .optional()
      .refine((v) => v === undefined || v === '' || isHttpUrl(v), 'must be an http(s) URL')
      .transform((v) => v || undefined),
    CRITICAL_REPORT_WEBHOOK_SECRET: z.string().optional(),
  })
  .superRefine((env, ctx) => {
    if (env.DICOMWEB_BEARER_TOKEN && (env.DICOMWEB_USERNAME || env.DICOMWEB_PASSWORD)) {
      ctx.addIssue({
        code: 'custom',
        path: ['DICOMWEB_BEARER_TOKEN'],
        message: 'set either DICOMWEB_BEARER_TOKEN or DICOMWEB_USERNAME/DICOMWEB_PASSWORD, not both',
      });
    }
    if (Boolean(env.DICOMWEB_USERNAME) !== Boolean(env.DICOMWEB_PASSWORD)) {
      ctx.addIssue({ code: 'custom', path: ['DICOMWEB_PASSWORD'], message: 'DICOMWEB_USERNAME and DICOMWEB_PASSWORD go together' });
    }
    if (env.REPORT_RETRY_MAX_MS < env.REPORT_RETRY_BASE_MS) {
      ctx.addIssue({ code: 'custom', path: ['REPORT_RETRY_MAX_MS'], message: `must be at least REPORT_RETRY_BASE_MS (${env.REPORT_RETRY_BASE_MS})` });
    }
    if (env.CRITICAL_REPORT_WEBHOOK_URL) {
      const s = env.CRITICAL_REPORT_WEBHOOK_SECRET?.trim() ?? '';
      const raw = WEBHOOK_SECRET.test(s) ? Buffer.from(s.slice(6), 'base64') : Buffer.alloc(0);
      if (raw.length < 16) {
        ctx.addIssue({
          code: 'custom',
          path: ['CRITICAL_REPORT_WEBHOOK_SECRET'],
          message: 'is required with CRITICAL_REPORT_WEBHOOK_URL: whsec_ followed by base64 of at least 16 bytes (the notification is signed the Standard Webhooks way)',
        });
      }
    } else if (env.CRITICAL_REPORT_WEBHOOK_SECRET) {
      ctx.addIssue({ code: 'custom', path: ['CRITICAL_REPORT_WEBHOOK_URL'], message: 'is required when CRITICAL_REPORT_WEBHOOK_SECRET is set' });
    }
  });

/** The name of every variable the schema above reads (the CLI's doctor and the compose test check names against it). */
export const KNOWN_ENV_VARS: readonly string[] = Object.freeze(Object.keys(schema.shape));

export type PacsAuth = { kind: 'none' } | { kind: 'basic'; username: string; password: string } | { kind: 'bearer'; token: string };

export interface Config {
  nodeEnv: string;
  port: number;
  host: string;
  publicBaseUrl: string;
  webhookSecrets: string[];
  webhookVerify: boolean;
  dicomwebUrl: string;
  pacsAuth: PacsAuth;
  pacsFlavor: 'auto' | 'dicomweb' | 'orthanc';
  /** Orthanc's REST root: ORTHANC_URL, else the parent of DICOMWEB_URL. */
  orthancUrl: string;
  pacsTimeoutMs: number;
  qidoPageSize: number;
  urlSigningSecrets: string[];
  urlTtlSeconds: number;
  syncDeadlineMs: number;
  corsAllowedOrigins: '*' | string[];
  /** Express's "trust proxy": whose X-Forwarded-For is believed for the client address; false for nobody. */
  trustProxy: string | false;
  studyCacheSeconds: number;
  dataDir: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  shutdownGraceMs: number;
  reports: ReportConfig;
  /** Where uploads are stored: `pacs` (DICOMWEB_URL) first, then STOW_DESTINATIONS. */
  stowDestinations: StowDestination[];
  uploadUrlTtlSeconds: number;
  maxUploadBytes: number;
}

/** report.delivered: where reports are filed, how the PDF download is guarded, how long failures are retried. */
export interface ReportConfig {
  sinks: ReportSink[];
  /** host or host:port entries that may be fetched over http and may resolve to private addresses. */
  downloadAllowedHosts: string[];
  maxBytes: number;
  /** How long after delivery the presigned URL is tried (Avara: typically valid for an hour). */
  downloadWindowMs: number;
  downloadTimeoutMs: number;
  /** How long after the download filing into the PACS is retried. */
  filingWindowMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  concurrency: number;
  pollMs: number;
  criticalWebhook?: { url: string; secret: string };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parses the environment once; throws ConfigError naming every bad variable. */
/**
 * Checks across variables, on the raw strings: zod skips an object's refinements once any field failed,
 * and these must be reported together with the field errors.
 */
function webhookModeProblems(env: NodeJS.ProcessEnv): string[] {
  const verify = !/^(false|0|no|off)$/i.test((env.AVARA_WEBHOOK_VERIFY ?? '').trim());
  const problems: string[] = [];
  if (verify && !(env.AVARA_WEBHOOK_SECRET ?? '').trim()) {
    problems.push('AVARA_WEBHOOK_SECRET: is required: one or more whsec_… secrets separated by spaces (or AVARA_WEBHOOK_VERIFY=false for local development)');
  }
  if (!verify && (env.NODE_ENV ?? '') === 'production') {
    problems.push('AVARA_WEBHOOK_VERIFY: cannot be false when NODE_ENV=production: unverified webhooks are for local development only');
  }
  return problems;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(env);
  const stow = parseStowDestinations(env);
  const cross = webhookModeProblems(env);
  if (!parsed.success || stow.problems.length > 0 || cross.length > 0) {
    const issues = parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.') || 'environment'}: ${i.message}`);
    throw new ConfigError([...issues, ...cross, ...stow.problems]);
  }
  const e = parsed.data;
  const pacsAuth: PacsAuth = e.DICOMWEB_BEARER_TOKEN
    ? { kind: 'bearer', token: e.DICOMWEB_BEARER_TOKEN }
    : e.DICOMWEB_USERNAME
      ? { kind: 'basic', username: e.DICOMWEB_USERNAME, password: e.DICOMWEB_PASSWORD ?? '' }
      : { kind: 'none' };
  return {
    nodeEnv: e.NODE_ENV,
    port: e.PORT,
    host: e.HOST,
    publicBaseUrl: e.PUBLIC_BASE_URL ?? `http://localhost:${e.PORT}`,
    webhookSecrets: e.AVARA_WEBHOOK_SECRET,
    webhookVerify: e.AVARA_WEBHOOK_VERIFY,
    dicomwebUrl: e.DICOMWEB_URL,
    pacsAuth,
    pacsFlavor: e.PACS_FLAVOR,
    orthancUrl: e.ORTHANC_URL ?? e.DICOMWEB_URL.replace(/\/[^/]*$/, ''),
    pacsTimeoutMs: e.PACS_TIMEOUT_MS,
    qidoPageSize: e.QIDO_PAGE_SIZE,
    urlSigningSecrets: e.URL_SIGNING_SECRET,
    urlTtlSeconds: e.URL_TTL_SECONDS,
    syncDeadlineMs: e.SYNC_DEADLINE_MS,
    corsAllowedOrigins: e.CORS_ALLOWED_ORIGINS,
    trustProxy: e.TRUST_PROXY === 'false' ? false : e.TRUST_PROXY,
    studyCacheSeconds: e.STUDY_CACHE_SECONDS,
    dataDir: e.DATA_DIR,
    logLevel: e.LOG_LEVEL,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    stowDestinations: [{ name: DEFAULT_DESTINATION, url: e.DICOMWEB_URL, auth: pacsAuth }, ...stow.destinations],
    uploadUrlTtlSeconds: e.UPLOAD_URL_TTL_SECONDS,
    maxUploadBytes: e.MAX_UPLOAD_BYTES,
    reports: {
      sinks: e.REPORT_SINKS,
      downloadAllowedHosts: e.REPORT_DOWNLOAD_ALLOWED_HOSTS,
      maxBytes: e.REPORT_MAX_BYTES,
      downloadWindowMs: e.REPORT_DOWNLOAD_WINDOW_SECONDS * 1000,
      downloadTimeoutMs: e.REPORT_DOWNLOAD_TIMEOUT_MS,
      filingWindowMs: e.REPORT_FILING_WINDOW_SECONDS * 1000,
      retryBaseMs: e.REPORT_RETRY_BASE_MS,
      retryMaxMs: e.REPORT_RETRY_MAX_MS,
      concurrency: e.REPORT_WORKER_CONCURRENCY,
      pollMs: e.REPORT_POLL_MS,
      criticalWebhook: e.CRITICAL_REPORT_WEBHOOK_URL
        ? { url: e.CRITICAL_REPORT_WEBHOOK_URL, secret: (e.CRITICAL_REPORT_WEBHOOK_SECRET ?? '').trim() }
        : undefined,
    },
  };
}

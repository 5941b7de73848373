import { z } from 'zod';

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

const httpUrl = z
  .string()
  .trim()
  .refine((v) => {
    try {
      const u = new URL(v);
      return u.protocol === 'http:' || u.protocol === 'https:';
    } catch {
      return false;
    }
  }, 'must be an http(s) URL')
  .transform((v) => v.replace(/\/+$/, ''));

const WEBHOOK_SECRET = /^whsec_[A-Za-z0-9+/]+={0,2}$/;

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
    QIDO_PAGE_SIZE: int(1, 100_000, 1000),
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
    CORS_ALLOWED_ORIGINS: z
      .string()
      .optional()
      .transform((v) => (v === undefined || v.trim() === '' || v.trim() === '*' ? '*' : v.split(',').map((s) => s.trim()).filter(Boolean))),
    STUDY_CACHE_SECONDS: int(0, 3600, 30),
    DATA_DIR: z.string().optional().default('./data'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional().default('info'),
    SHUTDOWN_GRACE_MS: int(0, 600_000, 10_000),
  })
  .superRefine((env, ctx) => {
    if (env.AVARA_WEBHOOK_VERIFY && env.AVARA_WEBHOOK_SECRET.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['AVARA_WEBHOOK_SECRET'],
        message: 'is required: one or more whsec_… secrets separated by spaces (or AVARA_WEBHOOK_VERIFY=false for local development)',
      });
    }
    if (!env.AVARA_WEBHOOK_VERIFY && env.NODE_ENV === 'production') {
      ctx.addIssue({
        code: 'custom',
        path: ['AVARA_WEBHOOK_VERIFY'],
        message: 'cannot be false when NODE_ENV=production: unverified webhooks are for local development only',
      });
    }
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
  });

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
  studyCacheSeconds: number;
  dataDir: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  shutdownGraceMs: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parses the environment once; throws ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.') || 'environment'}: ${i.message}`));
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
    studyCacheSeconds: e.STUDY_CACHE_SECONDS,
    dataDir: e.DATA_DIR,
    logLevel: e.LOG_LEVEL,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
  };
}

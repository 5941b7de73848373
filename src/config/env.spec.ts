import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './env.js';

const SECRET = `whsec_${Buffer.from('0123456789abcdef0123456789abcdef').toString('base64')}`;
const base = { AVARA_WEBHOOK_SECRET: SECRET, URL_SIGNING_SECRET: 'u'.repeat(32) };

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

describe('configuration', () => {
  it('has the documented defaults', () => {
    const c = loadConfig(base);
    expect(c).toMatchObject({
      port: 8080,
      publicBaseUrl: 'http://localhost:8080',
      webhookVerify: true,
      dicomwebUrl: 'http://localhost:8042/dicom-web',
      orthancUrl: 'http://localhost:8042',
      pacsFlavor: 'auto',
      urlTtlSeconds: 3600,
      syncDeadlineMs: 10000,
      dataDir: './data',
      corsAllowedOrigins: '*',
      pacsAuth: { kind: 'none' },
    });
    expect(loadConfig({ ...base, PORT: '9000' }).publicBaseUrl).toBe('http://localhost:9000');
  });

  it('takes several webhook secrets (space-separated) and URL secrets (comma-separated, first signs)', () => {
    const other = `whsec_${Buffer.from('another-secret-value-of-32-bytes').toString('base64')}`;
    const c = loadConfig({ ...base, AVARA_WEBHOOK_SECRET: `${SECRET}  ${other}`, URL_SIGNING_SECRET: `${'a'.repeat(32)}, ${'b'.repeat(40)}` });
    expect(c.webhookSecrets).toEqual([SECRET, other]);
    expect(c.urlSigningSecrets).toEqual(['a'.repeat(32), 'b'.repeat(40)]);
  });

  it('names each bad variable', () => {
    const p = problems({ AVARA_WEBHOOK_SECRET: 'whsec_short', URL_SIGNING_SECRET: 'x', URL_TTL_SECONDS: String(8 * 24 * 3600), PORT: 'eighty', DICOMWEB_URL: 'pacs' });
    for (const name of ['AVARA_WEBHOOK_SECRET', 'URL_SIGNING_SECRET', 'URL_TTL_SECONDS', 'PORT', 'DICOMWEB_URL']) {
      expect(p.some((l) => l.startsWith(name))).toBe(true);
    }
  });

  it('requires a webhook secret unless verification is off, and refuses it off in production', () => {
    expect(problems({ URL_SIGNING_SECRET: 'u'.repeat(32) })[0]).toMatch(/^AVARA_WEBHOOK_SECRET/);
    expect(loadConfig({ URL_SIGNING_SECRET: 'u'.repeat(32), AVARA_WEBHOOK_VERIFY: 'false' }).webhookVerify).toBe(false);
    expect(problems({ ...base, AVARA_WEBHOOK_VERIFY: 'false', NODE_ENV: 'production' })[0]).toMatch(/^AVARA_WEBHOOK_VERIFY.*production/);
    expect(problems({ ...base, AVARA_WEBHOOK_VERIFY: 'maybe' })[0]).toMatch(/^AVARA_WEBHOOK_VERIFY/);
  });

  it('takes basic or bearer credentials for the PACS, not both', () => {
    expect(loadConfig({ ...base, DICOMWEB_USERNAME: 'u', DICOMWEB_PASSWORD: 'p' }).pacsAuth).toEqual({ kind: 'basic', username: 'u', password: 'p' });
    expect(loadConfig({ ...base, DICOMWEB_BEARER_TOKEN: 't' }).pacsAuth).toEqual({ kind: 'bearer', token: 't' });
    expect(problems({ ...base, DICOMWEB_BEARER_TOKEN: 't', DICOMWEB_USERNAME: 'u', DICOMWEB_PASSWORD: 'p' })[0]).toMatch(/DICOMWEB_BEARER_TOKEN/);
    expect(problems({ ...base, DICOMWEB_USERNAME: 'u' })[0]).toMatch(/DICOMWEB_PASSWORD/);
  });

  it('believes X-Forwarded-For from this host only, unless told otherwise', () => {
    expect(loadConfig(base).trustProxy).toBe('loopback');
    expect(loadConfig({ ...base, TRUST_PROXY: 'false' }).trustProxy).toBe(false);
    expect(loadConfig({ ...base, TRUST_PROXY: '10.0.0.5, 10.1.0.0/16' }).trustProxy).toBe('10.0.0.5, 10.1.0.0/16');
    expect(problems({ ...base, TRUST_PROXY: 'everyone!' })[0]).toMatch(/^TRUST_PROXY/);
  });

  it('derives the Orthanc REST root from DICOMWEB_URL unless ORTHANC_URL is set', () => {
    expect(loadConfig({ ...base, DICOMWEB_URL: 'https://pacs.example/orthanc/dicom-web/' }).orthancUrl).toBe('https://pacs.example/orthanc');
    expect(loadConfig({ ...base, ORTHANC_URL: 'http://o:8042' }).orthancUrl).toBe('http://o:8042');
    expect(problems({ ...base, PACS_FLAVOR: 'dcm4chee' })[0]).toMatch(/^PACS_FLAVOR/);
  });
});

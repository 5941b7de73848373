import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../config/env.js';
import { parseStowDestinations } from './destinations.js';

const BASE = { URL_SIGNING_SECRET: 'x'.repeat(32), AVARA_WEBHOOK_VERIFY: 'false', DICOMWEB_URL: 'http://pacs:8042/dicom-web/', DICOMWEB_USERNAME: 'gw', DICOMWEB_PASSWORD: 'pw' };

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig({ ...BASE, ...env });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('STOW destinations', () => {
  it('always has the PACS of DICOMWEB_URL, with its credentials, as `pacs`', () => {
    const c = loadConfig(BASE);
    expect(c.stowDestinations).toEqual([{ name: 'pacs', url: 'http://pacs:8042/dicom-web', auth: { kind: 'basic', username: 'gw', password: 'pw' } }]);
    expect(c.uploadUrlTtlSeconds).toBe(900);
    expect(c.maxUploadBytes).toBe(1024 ** 3);
  });

  it('adds name=<root> entries with their own credentials', () => {
    const c = loadConfig({
      ...BASE,
      STOW_DESTINATIONS: ' research=https://research.example/dicom-web/ , VNA=http://vna:8080/dcm4chee-arc/aets/VNA/rs,',
      STOW_RESEARCH_BEARER_TOKEN: 'tok',
      STOW_VNA_USERNAME: 'u',
      STOW_VNA_PASSWORD: 'p',
      UPLOAD_URL_TTL_SECONDS: '60',
      MAX_UPLOAD_BYTES: '1048576',
    });
    expect(c.stowDestinations.map((d) => [d.name, d.url, d.auth.kind])).toEqual([
      ['pacs', 'http://pacs:8042/dicom-web', 'basic'],
      ['research', 'https://research.example/dicom-web', 'bearer'],
      ['vna', 'http://vna:8080/dcm4chee-arc/aets/VNA/rs', 'basic'],
    ]);
    expect([c.uploadUrlTtlSeconds, c.maxUploadBytes]).toEqual([60, 1048576]);
  });

  it('names every bad entry and credential, with the other configuration problems', () => {
    const p = problems({
      STOW_DESTINATIONS: 'pacs=http://x/dicom-web,bad name=http://x,a=ftp://x,b=http://user:pw@x/rs,c=http://x/rs,c=http://y/rs,d=http://x/rs,e=http://x/rs?q=1',
      STOW_D_USERNAME: 'only-user',
      STOW_C_BEARER_TOKEN: 't',
      STOW_C_PASSWORD: 'p',
      STOW_RESERCH_USERNAME: 'typo',
      MAX_UPLOAD_BYTES: '10',
    });
    expect(p).toEqual([
      expect.stringMatching(/^MAX_UPLOAD_BYTES: must be between/),
      expect.stringMatching(/"pacs" is the default destination/),
      expect.stringMatching(/"bad name=http:\/\/x" must be name=<DICOMweb root>/),
      expect.stringMatching(/a: must be an http\(s\) URL/),
      expect.stringMatching(/b: put credentials in STOW_<NAME>_USERNAME/),
      expect.stringMatching(/^STOW_C_BEARER_TOKEN: set either it or/),
      expect.stringMatching(/the name "c" is used twice/),
      expect.stringMatching(/^STOW_D_PASSWORD: STOW_D_USERNAME and STOW_D_PASSWORD go together/),
      expect.stringMatching(/e: must be a DICOMweb root without query/),
      expect.stringMatching(/^STOW_RESERCH_USERNAME: no destination named "reserch"/),
    ]);
  });

  it('maps names with underscores to their variables', () => {
    const r = parseStowDestinations({ STOW_DESTINATIONS: 'my_vna=http://v/rs', STOW_MY_VNA_BEARER_TOKEN: 't' });
    expect(r.problems).toEqual([]);
    expect(r.destinations).toEqual([{ name: 'my_vna', url: 'http://v/rs', auth: { kind: 'bearer', token: 't' } }]);
  });
});

import type { PacsAuth } from '../config/env.js';
import { PacsHttp, type PacsHttpOptions } from '../pacs/http.js';
import { StowClient } from '../pacs/stow.js';

/**
 * Where secondary captures are stored. The default destination `pacs` is DICOMWEB_URL with its
 * credentials; STOW_DESTINATIONS adds more DICOMweb roots (a research archive, a VNA):
 *
 *   STOW_DESTINATIONS=research=https://research.example/dicom-web,vna=http://vna:8080/rs
 *
 * each with its own credentials from STOW_<NAME>_USERNAME + STOW_<NAME>_PASSWORD or STOW_<NAME>_BEARER_TOKEN
 * (NAME upper-cased). Avara's viewer gets one upload link per destination and PUTs the object to each.
 */
export interface StowDestination {
  name: string;
  url: string;
  auth: PacsAuth;
}

export const DEFAULT_DESTINATION = 'pacs';
const NAME = /^[a-z][a-z0-9_]{0,31}$/;
const MAX_DESTINATIONS = 8;
const CREDENTIAL = /^STOW_(.+)_(USERNAME|PASSWORD|BEARER_TOKEN)$/;

/** The extra destinations named by STOW_DESTINATIONS, or every problem with them (for ConfigError). */
export function parseStowDestinations(env: NodeJS.ProcessEnv): { destinations: StowDestination[]; problems: string[] } {
  const problems: string[] = [];
  const destinations: StowDestination[] = [];
  const seen = new Set<string>();
  const entries = (env.STOW_DESTINATIONS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (const entry of entries) {
    const eq = entry.indexOf('=');
    const name = (eq > 0 ? entry.slice(0, eq) : '').trim().toLowerCase();
    const url = eq > 0 ? entry.slice(eq + 1).trim().replace(/\/+$/, '') : '';
    if (!NAME.test(name)) {
      problems.push(`STOW_DESTINATIONS: "${entry.slice(0, 40)}" must be name=<DICOMweb root>, the name a letter then letters, digits or _ (at most 32)`);
      continue;
    }
    if (name === DEFAULT_DESTINATION) {
      problems.push(`STOW_DESTINATIONS: "${DEFAULT_DESTINATION}" is the default destination (DICOMWEB_URL); give the others other names`);
      continue;
    }
    if (seen.has(name)) {
      problems.push(`STOW_DESTINATIONS: the name "${name}" is used twice`);
      continue;
    }
    seen.add(name);
    const urlProblem = checkUrl(url);
    if (urlProblem) {
      problems.push(`STOW_DESTINATIONS: ${name}: ${urlProblem}`);
      continue;
    }
    const auth = credentials(env, name, problems);
    if (auth) destinations.push({ name, url, auth });
  }
  if (destinations.length > MAX_DESTINATIONS) problems.push(`STOW_DESTINATIONS: at most ${MAX_DESTINATIONS} extra destinations`);
  const known = new Set([...seen].map(envName));
  for (const key of Object.keys(env)) {
    const m = CREDENTIAL.exec(key);
    if (m && !known.has(m[1]!) && env[key]) problems.push(`${key}: no destination named "${m[1]!.toLowerCase()}" in STOW_DESTINATIONS`);
  }
  return { destinations, problems };
}

function envName(name: string): string {
  return name.toUpperCase();
}

function checkUrl(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'must be an http(s) URL (the DICOMweb root, e.g. https://archive.example/dicom-web)';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return 'must be an http(s) URL';
  if (u.username || u.password) return 'put credentials in STOW_<NAME>_USERNAME/_PASSWORD, not in the URL';
  if (u.search || u.hash) return 'must be a DICOMweb root without query or fragment';
  return undefined;
}

function credentials(env: NodeJS.ProcessEnv, name: string, problems: string[]): PacsAuth | undefined {
  const p = `STOW_${envName(name)}_`;
  const username = env[`${p}USERNAME`] || undefined;
  const password = env[`${p}PASSWORD`] || undefined;
  const token = env[`${p}BEARER_TOKEN`] || undefined;
  if (token && (username || password)) {
    problems.push(`${p}BEARER_TOKEN: set either it or ${p}USERNAME/${p}PASSWORD, not both`);
    return undefined;
  }
  if (Boolean(username) !== Boolean(password)) {
    problems.push(`${p}PASSWORD: ${p}USERNAME and ${p}PASSWORD go together`);
    return undefined;
  }
  if (token) return { kind: 'bearer', token };
  if (username) return { kind: 'basic', username, password: password ?? '' };
  return { kind: 'none' };
}

/**
 * One StowClient per destination. The default destination shares the gateway's PACS connection pool;
 * the others get their own (their own credentials), closed by close().
 */
export class UploadDestinations {
  private readonly clients = new Map<string, StowClient>();
  private readonly owned: PacsHttp[] = [];

  constructor(destinations: StowDestination[], opts: { pacsHttp: PacsHttp } & Omit<PacsHttpOptions, 'auth'>) {
    for (const d of destinations) {
      let http = opts.pacsHttp;
      if (d.name !== DEFAULT_DESTINATION) {
        http = new PacsHttp({ auth: d.auth, timeoutMs: opts.timeoutMs, onRequest: opts.onRequest });
        this.owned.push(http);
      }
      this.clients.set(d.name, new StowClient(d.url, http));
    }
  }

  get names(): string[] {
    return [...this.clients.keys()];
  }

  get(name: string): StowClient | undefined {
    return this.clients.get(name);
  }

  async close(): Promise<void> {
    await Promise.all(this.owned.map((h) => h.close()));
  }
}

import type { Logger } from 'pino';
import type { Config } from '../config/env.js';
import { DicomwebPacs } from './dicomweb-pacs.js';
import { PacsHttp } from './http.js';
import { OrthancPacs } from './orthanc-pacs.js';
import type { PacsClient } from './pacs-client.js';

/**
 * Chooses the PACS path. PACS_FLAVOR=auto asks ORTHANC_URL (default: the parent of DICOMWEB_URL) for
 * /system: an Orthanc answers with its Version and DicomAet and gets the native path; anything else,
 * or no answer, gets the generic DICOMweb path. The choice is logged.
 */
export async function createPacs(config: Config, http: PacsHttp, log: Logger): Promise<PacsClient> {
  const dicomweb = new DicomwebPacs(config.dicomwebUrl, http, config.qidoPageSize);
  const orthanc = () => new OrthancPacs(config.orthancUrl, http, dicomweb);
  if (config.pacsFlavor === 'dicomweb') {
    log.info({ pacsFlavor: 'dicomweb', reason: 'PACS_FLAVOR=dicomweb' }, 'PACS path: generic DICOMweb');
    return dicomweb;
  }
  if (config.pacsFlavor === 'orthanc') {
    log.info({ pacsFlavor: 'orthanc', orthancUrl: config.orthancUrl, reason: 'PACS_FLAVOR=orthanc' }, 'PACS path: Orthanc native REST');
    return orthanc();
  }
  const probe = await probeOrthanc(config.orthancUrl, http);
  if (probe.orthanc) {
    log.info({ pacsFlavor: 'orthanc', orthancUrl: config.orthancUrl, orthancVersion: probe.version }, 'PACS path: Orthanc native REST (auto: Orthanc answered /system)');
    return orthanc();
  }
  log.info({ pacsFlavor: 'dicomweb', reason: probe.reason }, 'PACS path: generic DICOMweb (auto: no Orthanc recognised)');
  return dicomweb;
}

async function probeOrthanc(root: string, http: PacsHttp): Promise<{ orthanc: true; version: string } | { orthanc: false; reason: string }> {
  try {
    const { json } = await http.getJson<{ Version?: unknown; DicomAet?: unknown; ApiVersion?: unknown }>(`${root}/system`, AbortSignal.timeout(3000), 'application/json');
    if (json && typeof json.Version === 'string' && typeof json.DicomAet === 'string') return { orthanc: true, version: json.Version };
    return { orthanc: false, reason: `${root}/system is not Orthanc's` };
  } catch (err) {
    return { orthanc: false, reason: `${root}/system did not answer (${err instanceof Error ? err.message : String(err)})` };
  }
}

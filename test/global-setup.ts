import { execFileSync } from 'node:child_process';
import { ensureDebianPackages, orthancInstalled } from '../src/cli/local-orthanc.js';

/**
 * Integration tests need a real Orthanc (with DICOMweb) and dcmtk. On a fresh Debian machine where we are
 * root, `npm test` installs them; elsewhere it stops at once with the command to run, rather than letting
 * every suite fail on its own. A container engine is not required (testcontainers is used when one answers).
 */
function dcmtkInstalled(): boolean {
  try {
    execFileSync('dump2dcm', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export default function setup(): void {
  const ok = () => orthancInstalled() && dcmtkInstalled();
  if (!ensureDebianPackages(['orthanc', 'orthanc-dicomweb', 'dcmtk'], ok, (l) => console.log(`test setup: ${l}`))) {
    throw new Error('the integration tests need Orthanc, its DICOMweb plugin and dcmtk: sudo apt-get install -y --no-install-recommends orthanc orthanc-dicomweb dcmtk');
  }
}

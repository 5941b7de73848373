import { execFileSync } from 'node:child_process';
import { ensureDebianPackages, orthancInstalled } from '../src/cli/local-orthanc.js';

/**
 * Integration tests need a real Orthanc (with DICOMweb) and dcmtk. On a fresh Debian machine where we are
 * root, `npm test` installs them; elsewhere it stops at once with the command to run, rather than letting
 * every suite fail on its own. A container engine is not required (testcontainers is used when one answers).
 */
function dcmtkInstalled(): boolean {
  return runs('dump2dcm', ['--version']);
}

/** The media tests make clips and pictures with ffmpeg and check served videos with ffprobe. */
function ffmpegInstalled(): boolean {
  return runs('ffmpeg', ['-version']) && runs('ffprobe', ['-version']);
}

function runs(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export default function setup(): void {
  const ok = () => orthancInstalled() && dcmtkInstalled() && ffmpegInstalled();
  if (!ensureDebianPackages(['orthanc', 'orthanc-dicomweb', 'dcmtk', 'ffmpeg'], ok, (l) => console.log(`test setup: ${l}`))) {
    throw new Error('the integration tests need Orthanc, its DICOMweb plugin, dcmtk and ffmpeg: sudo apt-get install -y --no-install-recommends orthanc orthanc-dicomweb dcmtk ffmpeg');
  }
}

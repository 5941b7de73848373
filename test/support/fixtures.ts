/**
 * Real DICOM test fixtures, generated with the dcmtk command-line tools.
 *
 * - buildStudyFixtures(): one study (one StudyInstanceUID) with several series covering
 *   the transfer syntaxes and character sets the gateway must stream untouched.
 * - buildLargeFixture(): one big uncompressed instance (default 100 MiB of pixel data).
 * - buildManyInstanceStudy(): thousands of tiny instances, written in-process from one
 *   dump2dcm template (no process per instance).
 *
 * Everything is cached below `<repo>/.fixtures/v<FIXTURES_VERSION>/`. Every cache entry is
 * built in a temporary sibling directory and renamed into place once complete (with its
 * manifest.json), so concurrent vitest workers and interrupted runs never see half-written
 * files. Bump FIXTURES_VERSION whenever the generated content changes.
 *
 * UIDs: defaults are deterministic (derived from a fixed name plus the version), so repeated
 * runs reuse the cache and re-uploading to a PACS yields the same instances. All UIDs are in the
 * `2.25.<UUID as decimal>` form; derived ones use a name-based (RFC 9562 version 8) UUID.
 *
 * Requires dcmtk (dump2dcm, dcmcjpeg, dcmcrle, dcmdump) on PATH.
 */
import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Bump to regenerate every cached fixture (it is part of the cache directory name). */
export const FIXTURES_VERSION = 1;

export const TransferSyntax = {
  ImplicitVRLittleEndian: '1.2.840.10008.1.2',
  ExplicitVRLittleEndian: '1.2.840.10008.1.2.1',
  ExplicitVRBigEndian: '1.2.840.10008.1.2.2',
  JPEGBaseline8Bit: '1.2.840.10008.1.2.4.50',
  JPEGLosslessSV1: '1.2.840.10008.1.2.4.70',
  RLELossless: '1.2.840.10008.1.2.5',
} as const;

export const SopClass = {
  SecondaryCapture: '1.2.840.10008.5.1.4.1.1.7',
  MultiFrameGrayscaleByteSC: '1.2.840.10008.5.1.4.1.1.7.2',
  MultiFrameGrayscaleWordSC: '1.2.840.10008.5.1.4.1.1.7.3',
} as const;

export interface Fixture {
  name: string;
  path: string;
  studyUid: string;
  seriesUid: string;
  sopUid: string;
  sopClassUid: string;
  transferSyntax: string;
  sizeBytes: number;
}

const REPO_ROOT = path.resolve(fileURLToPath(new URL('../../', import.meta.url)));
const DEFAULT_DIR = path.join(REPO_ROOT, '.fixtures');
const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// UIDs
// ---------------------------------------------------------------------------------------------

function uuidBytesToUid(bytes: Uint8Array): string {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return `2.25.${n.toString(10)}`; // BigInt#toString never has leading zeros; n > 0 (version bits)
}

/** A fresh random UID: `2.25.` + a random (v4) UUID as an unsigned decimal (<= 44 chars). */
export function newUid(): string {
  return uuidBytesToUid(Buffer.from(randomUUID().replaceAll('-', ''), 'hex'));
}

/** Deterministic UID for a name (name-based UUID v8 from SHA-256, RFC 9562). */
export function deriveUid(name: string): string {
  const h = createHash('sha256').update('avara-gateway-test-fixtures\0').update(name).digest();
  const b = h.subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x80; // version 8
  b[8] = (b[8]! & 0x3f) | 0x80; // RFC 4122/9562 variant
  return uuidBytesToUid(b);
}

function shortHash(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 16);
}

// ---------------------------------------------------------------------------------------------
// dcmtk process helpers
// ---------------------------------------------------------------------------------------------

async function runTool(
  tool: string,
  args: string[],
  opts: { cwd?: string } = {},
): Promise<Buffer> {
  try {
    const { stdout } = await execFileAsync(tool, args, {
      cwd: opts.cwd,
      encoding: 'buffer',
      maxBuffer: 256 * MiB,
    });
    return stdout;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer | string; stdout?: Buffer | string };
    if (e.code === 'ENOENT' && (e.path === tool || String(e.message).includes(`spawn ${tool} ENOENT`))) {
      throw new Error(
        `dcmtk tool "${tool}" was not found on PATH; the DICOM test fixtures need dcmtk ` +
          `(Debian/Ubuntu: apt-get install dcmtk, macOS: brew install dcmtk).`,
      );
    }
    const detail =
      [e.stderr, e.stdout].map((x) => (x ?? '').toString().trim()).find((x) => x.length > 0) ?? e.message;
    throw new Error(`dcmtk tool "${tool}" failed (exit ${String(e.code)}): ${tool} ${args.join(' ')}\n${detail}`);
  }
}

/** Normalise '0002,0010' / '(0002,0010)' / '00020010' to '0002,0010' (lower-case). */
function normTag(tag: string): string {
  const hex = tag.replace(/[^0-9a-fA-F]/g, '').toLowerCase();
  if (hex.length !== 8) throw new Error(`bad tag "${tag}"`);
  return `${hex.slice(0, 4)},${hex.slice(4)}`;
}

function parseDumpLine(line: string): [tag: string, value: string] | undefined {
  const m = /^\s*\(([0-9a-fA-F]{4},[0-9a-fA-F]{4})\) (\w\w) (.*)$/.exec(line);
  if (!m) return undefined;
  let rest = m[3]!;
  const hash = rest.lastIndexOf('#');
  if (hash >= 0) rest = rest.slice(0, hash);
  rest = rest.trim();
  let value: string;
  if (rest === '(no value available)') value = '';
  else if (rest.startsWith('[') && rest.endsWith(']')) value = rest.slice(1, -1);
  else value = rest;
  return [m[1]!.toLowerCase(), value];
}

/**
 * Read top-level tag values of DICOM files with `dcmdump` (one process per batch of files).
 * UIDs are printed as numbers (-Un). Returns, per file, a map 'gggg,eeee' -> value ('' for
 * empty values); absent tags are missing from the map. Values are as printed by dcmdump:
 * multi-valued strings keep the '\' separator, AT values look like '(0018,1063)'.
 *
 * Text: with `utf8: true` (default) dcmdump converts values to UTF-8 (+U8) using the file's
 * SpecificCharacterSet -- note that it then also reports (0008,0005) as 'ISO_IR 192'.
 * With `utf8: false` nothing is converted and the output is decoded as latin1, i.e. each
 * char is one raw byte (`Buffer.from(value, 'latin1')` gives the bytes stored in the file).
 */
export async function dcmdumpTagsMany(
  files: string[],
  tags: string[],
  opts: { utf8?: boolean } = {},
): Promise<Map<string, Record<string, string>>> {
  const utf8 = opts.utf8 ?? true;
  const wanted = tags.map(normTag);
  const result = new Map<string, Record<string, string>>();
  const BATCH = 400;
  for (let i = 0; i < files.length; i += BATCH) {
    const batch = files.slice(i, i + BATCH);
    const args = ['-q', '-M', '-Un', ...(utf8 ? ['+U8'] : []), '-s', '+F', ...wanted.flatMap((t) => ['+P', t]), ...batch];
    const out = (await runTool('dcmdump', args)).toString(utf8 ? 'utf8' : 'latin1');
    let idx = -1;
    let current: Record<string, string> | undefined;
    for (const line of out.split('\n')) {
      if (line.startsWith('# dcmdump (')) {
        idx++;
        current = {};
        result.set(batch[idx]!, current);
        continue;
      }
      const parsed = parseDumpLine(line);
      if (parsed && current && wanted.includes(parsed[0]) && !(parsed[0] in current)) {
        current[parsed[0]] = parsed[1];
      }
    }
    if (idx + 1 !== batch.length) {
      throw new Error(`dcmdump printed ${idx + 1} file headers for ${batch.length} files`);
    }
  }
  return result;
}

/** Single-file form of {@link dcmdumpTagsMany}. */
export async function dcmdumpTags(
  file: string,
  tags: string[],
  opts: { utf8?: boolean } = {},
): Promise<Record<string, string>> {
  const m = await dcmdumpTagsMany([file], tags, opts);
  return m.get(file) ?? {};
}

// ---------------------------------------------------------------------------------------------
// dump2dcm input
// ---------------------------------------------------------------------------------------------

type DumpValue = string | number | null | { file: string } | { at: string };
type DumpElement = [tag: string, vr: string, value: DumpValue];

function dumpText(elements: DumpElement[]): string {
  const lines = elements.map(([tag, vr, value]) => {
    const t = `(${normTag(tag)})`;
    if (value === null || value === '') return `${t} ${vr} (no value available)`;
    if (typeof value === 'number') return `${t} ${vr} ${value}`;
    if (typeof value === 'object' && 'file' in value) return `${t} ${vr} =${value.file}`;
    if (typeof value === 'object' && 'at' in value) return `${t} ${vr} (${normTag(value.at)})`;
    if (/[\]\r\n]/.test(value)) throw new Error(`value not representable in a dcmtk dump: ${value}`);
    return `${t} ${vr} [${value}]`;
  });
  return lines.join('\n') + '\n';
}

interface PixelSpec {
  rows: number;
  cols: number;
  frames: number;
  bits: 8 | 16;
  /** BitsStored for 16-bit images (default 12); 8-bit images always store 8. */
  stored?: number;
}

/** Real, non-constant pixel data: gradient + checker + a disc, shifted per frame/seed. */
function makePixels(p: PixelSpec, seed: number): Buffer {
  const { rows, cols, frames, bits } = p;
  const perFrame = rows * cols;
  if (bits === 8) {
    const out = Buffer.alloc(perFrame * frames);
    for (let f = 0; f < frames; f++) {
      const cx = (cols / 2 + f * 3) % cols;
      const cy = rows / 2;
      const r2 = (Math.min(rows, cols) / 4) ** 2;
      for (let y = 0; y < rows; y++) {
        for (let x = 0; x < cols; x++) {
          let v = (x * 2 + y + seed * 16 + f * 20) & 0xff;
          if (((x >> 3) + (y >> 3)) % 2 === 0) v = (v + 40) & 0xff;
          if ((x - cx) ** 2 + (y - cy) ** 2 < r2) v = 255 - v;
          out[f * perFrame + y * cols + x] = v;
        }
      }
    }
    return out;
  }
  const stored = p.stored ?? 12;
  const max = (1 << stored) - 1;
  const px = new Uint16Array(perFrame * frames);
  for (let f = 0; f < frames; f++) {
    for (let y = 0; y < rows; y++) {
      for (let x = 0; x < cols; x++) {
        let v = (x * 37 + y * 61 + seed * 500 + f * 97) % (max + 1);
        if ((x - cols / 2) ** 2 + (y - rows / 2) ** 2 < (rows / 4) ** 2) v = max - v;
        px[f * perFrame + y * cols + x] = v;
      }
    }
  }
  // Raw files are read by dump2dcm as little endian (+rl, the default).
  const out = Buffer.alloc(px.length * 2);
  for (let i = 0; i < px.length; i++) out.writeUInt16LE(px[i]!, i * 2);
  return out;
}

function imagePixelElements(p: PixelSpec, rawFile: string): DumpElement[] {
  const stored = p.bits === 8 ? 8 : (p.stored ?? 12);
  return [
    ['0028,0002', 'US', 1],
    ['0028,0004', 'CS', 'MONOCHROME2'],
    ['0028,0010', 'US', p.rows],
    ['0028,0011', 'US', p.cols],
    ['0028,0100', 'US', p.bits],
    ['0028,0101', 'US', stored],
    ['0028,0102', 'US', stored - 1],
    ['0028,0103', 'US', 0],
    ['0028,0301', 'CS', 'NO'],
    ['7fe0,0010', p.bits === 8 ? 'OB' : 'OW', { file: rawFile }],
  ];
}

interface CommonAttrs {
  charset?: string;
  sopClassUid: string;
  sopUid: string;
  studyUid: string;
  seriesUid: string;
  seriesNumber: number;
  instanceNumber: number;
  patientName: string;
  patientId: string;
  studyDescription: string;
  seriesDescription: string;
  accession: string;
}

function commonElements(a: CommonAttrs): DumpElement[] {
  const els: DumpElement[] = [];
  if (a.charset) els.push(['0008,0005', 'CS', a.charset]);
  els.push(
    ['0008,0008', 'CS', 'DERIVED\\SECONDARY'],
    ['0008,0016', 'UI', a.sopClassUid],
    ['0008,0018', 'UI', a.sopUid],
    ['0008,0020', 'DA', '20240115'],
    ['0008,0021', 'DA', '20240115'],
    ['0008,0023', 'DA', '20240115'],
    ['0008,0030', 'TM', '101500'],
    ['0008,0031', 'TM', '101500'],
    ['0008,0033', 'TM', '101500'],
    ['0008,0050', 'SH', a.accession],
    ['0008,0060', 'CS', 'OT'],
    ['0008,0064', 'CS', 'WSD'],
    ['0008,0070', 'LO', 'Avara test fixtures'],
    ['0008,0090', 'PN', null],
    ['0008,1030', 'LO', a.studyDescription],
    ['0008,103e', 'LO', a.seriesDescription],
    ['0010,0010', 'PN', a.patientName],
    ['0010,0020', 'LO', a.patientId],
    ['0010,0030', 'DA', '19700101'],
    ['0010,0040', 'CS', 'O'],
    ['0020,000d', 'UI', a.studyUid],
    ['0020,000e', 'UI', a.seriesUid],
    ['0020,0010', 'SH', 'FX1'],
    ['0020,0011', 'IS', String(a.seriesNumber)],
    ['0020,0013', 'IS', String(a.instanceNumber)],
    ['0020,0020', 'CS', null],
  );
  return els;
}

// ---------------------------------------------------------------------------------------------
// Cache directories (atomic: build in a temp sibling, rename into place)
// ---------------------------------------------------------------------------------------------

interface Manifest<T> {
  version: number;
  kind: string;
  key: string;
  data: T;
}

async function readManifest<T>(dir: string, kind: string, key: string): Promise<T | undefined> {
  try {
    const m = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as Manifest<T>;
    if (m.version !== FIXTURES_VERSION || m.kind !== kind || m.key !== key) return undefined;
    return m.data;
  } catch {
    return undefined;
  }
}

/** True when `file` exists, has `size` bytes (if given) and carries the Part 10 'DICM' magic. */
async function isPart10(file: string, size?: number): Promise<boolean> {
  try {
    const st = await stat(file);
    if (size !== undefined && st.size !== size) return false;
    const fh = await open(file, 'r');
    try {
      const buf = Buffer.alloc(4);
      await fh.read(buf, 0, 4, 128);
      return buf.toString('latin1') === 'DICM';
    } finally {
      await fh.close();
    }
  } catch {
    return false;
  }
}

const inflight = new Map<string, Promise<unknown>>();

/**
 * Return the cached entry at `finalDir` if `validate` accepts it, else build it with `build`
 * into a temp dir, write the manifest there and rename the temp dir into place.
 */
async function cached<T>(
  finalDir: string,
  kind: string,
  key: string,
  validate: (dir: string, data: T) => Promise<boolean>,
  build: (tmpDir: string) => Promise<T>,
): Promise<{ dir: string; data: T }> {
  const memo = inflight.get(finalDir);
  if (memo) return memo as Promise<{ dir: string; data: T }>;
  const p = (async () => {
    const existing = await readManifest<T>(finalDir, kind, key);
    if (existing !== undefined && (await validate(finalDir, existing))) return { dir: finalDir, data: existing };

    await mkdir(path.dirname(finalDir), { recursive: true });
    const tmpDir = `${finalDir}.tmp-${process.pid}-${shortHash(newUid()).slice(0, 8)}`;
    await mkdir(tmpDir, { recursive: true });
    try {
      const data = await build(tmpDir);
      const manifest: Manifest<T> = { version: FIXTURES_VERSION, kind, key, data };
      await writeFile(path.join(tmpDir, 'manifest.json'), JSON.stringify(manifest, null, 1));
      for (let attempt = 0; ; attempt++) {
        try {
          await rename(tmpDir, finalDir);
          return { dir: finalDir, data };
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'EPERM') throw err;
          // Someone else (another vitest worker) finished first, or a stale/invalid entry is there.
          const theirs = await readManifest<T>(finalDir, kind, key);
          if (theirs !== undefined && (await validate(finalDir, theirs))) {
            await rm(tmpDir, { recursive: true, force: true });
            return { dir: finalDir, data: theirs };
          }
          if (attempt >= 2) throw err;
          await rm(finalDir, { recursive: true, force: true });
        }
      }
    } catch (err) {
      await rm(tmpDir, { recursive: true, force: true });
      throw err;
    }
  })();
  // Only de-duplicates concurrent calls; later calls re-validate the cache on disk.
  inflight.set(finalDir, p);
  const forget = () => inflight.delete(finalDir);
  p.then(forget, forget);
  return p;
}

// ---------------------------------------------------------------------------------------------
// Study with one instance per transfer syntax / charset
// ---------------------------------------------------------------------------------------------

interface SmallSpec {
  name: string;
  series: 'uncompressed' | 'compressed' | 'multiframe' | 'latin1' | 'utf8';
  sopClassUid: string;
  transferSyntax: string;
  pixels: PixelSpec;
  /** dump2dcm output transfer syntax option. */
  write: '+te' | '+ti' | '+tb';
  /** Optional re-encode step on the dump2dcm output. */
  encode?: { tool: 'dcmcjpeg' | 'dcmcrle'; args: string[] };
  charset?: 'ISO_IR 100' | 'ISO_IR 192';
  patientName?: string;
  seriesDescription?: string;
  extra?: DumpElement[];
}

const SERIES_ORDER = ['uncompressed', 'compressed', 'multiframe', 'latin1', 'utf8'] as const;
const SERIES_DESCRIPTION: Record<SmallSpec['series'], string> = {
  uncompressed: 'Uncompressed transfer syntaxes',
  compressed: 'Compressed transfer syntaxes',
  multiframe: 'Multi-frame',
  latin1: 'Zeichensatz Latin-1 (Größe, Café)',
  utf8: 'UTF-8 Σειρά 日本語',
};

/** PatientName of the Latin-1 fixture (stored as ISO 8859-1 bytes). */
export const LATIN1_PATIENT_NAME = 'Müller^René';
/** PatientName of the UTF-8 fixture (PS3.5 H.3 style, three component groups). */
export const UTF8_PATIENT_NAME = 'Yamada^Tarou=山田^太郎=やまだ^たろう';
export const DEFAULT_PATIENT_NAME = 'Fixture^Study';
export const DEFAULT_PATIENT_ID = 'AVARA-FX-001';
export const MULTIFRAME_FRAMES = 10;

const SMALL_SPECS: SmallSpec[] = [
  {
    name: 'explicit-le',
    series: 'uncompressed',
    sopClassUid: SopClass.SecondaryCapture,
    transferSyntax: TransferSyntax.ExplicitVRLittleEndian,
    pixels: { rows: 64, cols: 64, frames: 1, bits: 16, stored: 12 },
    write: '+te',
  },
  {
    name: 'implicit-le',
    series: 'uncompressed',
    sopClassUid: SopClass.SecondaryCapture,
    transferSyntax: TransferSyntax.ImplicitVRLittleEndian,
    pixels: { rows: 64, cols: 64, frames: 1, bits: 8 },
    write: '+ti',
  },
  {
    name: 'big-endian',
    series: 'uncompressed',
    sopClassUid: SopClass.SecondaryCapture,
    transferSyntax: TransferSyntax.ExplicitVRBigEndian,
    pixels: { rows: 64, cols: 64, frames: 1, bits: 16, stored: 12 },
    write: '+tb',
  },
  {
    name: 'jpeg-baseline',
    series: 'compressed',
    sopClassUid: SopClass.SecondaryCapture,
    transferSyntax: TransferSyntax.JPEGBaseline8Bit,
    pixels: { rows: 64, cols: 64, frames: 1, bits: 8 },
    write: '+te',
    // +un: keep our SOP Instance UID (dcmcjpeg assigns a new one for lossy output by default).
    encode: { tool: 'dcmcjpeg', args: ['+eb', '+un'] },
  },
  {
    name: 'jpeg-lossless',
    series: 'compressed',
    sopClassUid: SopClass.SecondaryCapture,
    transferSyntax: TransferSyntax.JPEGLosslessSV1,
    pixels: { rows: 64, cols: 64, frames: 1, bits: 16, stored: 12 },
    write: '+te',
    encode: { tool: 'dcmcjpeg', args: [] }, // default: lossless, first-order prediction (SV1)
  },
  {
    name: 'rle',
    series: 'compressed',
    sopClassUid: SopClass.SecondaryCapture,
    transferSyntax: TransferSyntax.RLELossless,
    pixels: { rows: 64, cols: 64, frames: 1, bits: 16, stored: 12 },
    write: '+te',
    encode: { tool: 'dcmcrle', args: [] },
  },
  {
    name: 'multiframe',
    series: 'multiframe',
    sopClassUid: SopClass.MultiFrameGrayscaleByteSC,
    transferSyntax: TransferSyntax.ExplicitVRLittleEndian,
    pixels: { rows: 64, cols: 64, frames: MULTIFRAME_FRAMES, bits: 8 },
    write: '+te',
    extra: [
      ['0018,1063', 'DS', '100'],
      ['0028,0008', 'IS', String(MULTIFRAME_FRAMES)],
      ['0028,0009', 'AT', { at: '0018,1063' }],
      ['2050,0020', 'CS', 'IDENTITY'],
    ],
  },
  {
    name: 'latin1',
    series: 'latin1',
    sopClassUid: SopClass.SecondaryCapture,
    transferSyntax: TransferSyntax.ExplicitVRLittleEndian,
    pixels: { rows: 64, cols: 64, frames: 1, bits: 8 },
    write: '+te',
    charset: 'ISO_IR 100',
    patientName: LATIN1_PATIENT_NAME,
  },
  {
    name: 'utf8',
    series: 'utf8',
    sopClassUid: SopClass.SecondaryCapture,
    transferSyntax: TransferSyntax.ExplicitVRLittleEndian,
    pixels: { rows: 64, cols: 64, frames: 1, bits: 8 },
    write: '+te',
    charset: 'ISO_IR 192',
    patientName: UTF8_PATIENT_NAME,
  },
];

/** Default StudyInstanceUID of buildStudyFixtures() (deterministic per FIXTURES_VERSION). */
export const DEFAULT_STUDY_UID = deriveUid(`study-fixtures/v${FIXTURES_VERSION}`);

type StoredFixture = Omit<Fixture, 'path'> & { file: string };

async function validateFixtures(dir: string, data: StoredFixture[]): Promise<boolean> {
  if (!Array.isArray(data) || data.length === 0) return false;
  const ok = await Promise.all(data.map((f) => isPart10(path.join(dir, f.file), f.sizeBytes)));
  return ok.every(Boolean);
}

/** Check transfer syntax, SOP UIDs and study/series UIDs of a freshly written file with dcmdump. */
async function verifyWritten(file: string, expect: Omit<Fixture, 'path' | 'sizeBytes' | 'name'>): Promise<void> {
  const t = await dcmdumpTags(file, ['0002,0010', '0002,0003', '0008,0016', '0008,0018', '0020,000d', '0020,000e']);
  const checks: [string, string | undefined, string][] = [
    ['TransferSyntaxUID', t['0002,0010'], expect.transferSyntax],
    ['MediaStorageSOPInstanceUID', t['0002,0003'], expect.sopUid],
    ['SOPClassUID', t['0008,0016'], expect.sopClassUid],
    ['SOPInstanceUID', t['0008,0018'], expect.sopUid],
    ['StudyInstanceUID', t['0020,000d'], expect.studyUid],
    ['SeriesInstanceUID', t['0020,000e'], expect.seriesUid],
  ];
  for (const [name, got, want] of checks) {
    if (got !== want) throw new Error(`fixture ${file}: ${name} is ${String(got)}, expected ${want}`);
  }
}

/**
 * One study (same StudyInstanceUID) with one small real image per transfer syntax / charset,
 * in five series: uncompressed (explicit-le, implicit-le, big-endian), compressed
 * (jpeg-baseline, jpeg-lossless, rle), multiframe (10 frames), latin1, utf8.
 * All instances share PatientID; the latin1/utf8 instances carry their own non-ASCII
 * PatientName (a PACS keeps one patient name per patient, typically the first stored).
 */
export async function buildStudyFixtures(opts: { dir?: string; studyUid?: string } = {}): Promise<Fixture[]> {
  const baseDir = path.resolve(opts.dir ?? DEFAULT_DIR);
  const studyUid = opts.studyUid ?? DEFAULT_STUDY_UID;
  const key = `study|${studyUid}`;
  const finalDir = path.join(baseDir, `v${FIXTURES_VERSION}`, `study-${shortHash(key)}`);

  const { dir, data } = await cached<StoredFixture[]>(finalDir, 'study', key, validateFixtures, async (tmp) => {
    const seriesUid = Object.fromEntries(
      SERIES_ORDER.map((s) => [s, deriveUid(`${studyUid}/series/${s}`)]),
    ) as Record<SmallSpec['series'], string>;
    const counters: Record<string, number> = {};

    const jobs = SMALL_SPECS.map((spec, seed) => {
      counters[spec.series] = (counters[spec.series] ?? 0) + 1;
      const instanceNumber = counters[spec.series]!;
      return (async (): Promise<StoredFixture> => {
        const sopUid = deriveUid(`${studyUid}/sop/${spec.name}`);
        const raw = `${spec.name}.raw`;
        const dump = `${spec.name}.dump`;
        const out = `${spec.name}.dcm`;
        const stage = spec.encode ? `${spec.name}.uncompressed.dcm` : out;
        const attrs: CommonAttrs = {
          charset: spec.charset,
          sopClassUid: spec.sopClassUid,
          sopUid,
          studyUid,
          seriesUid: seriesUid[spec.series],
          seriesNumber: SERIES_ORDER.indexOf(spec.series) + 1,
          instanceNumber,
          patientName: spec.patientName ?? DEFAULT_PATIENT_NAME,
          patientId: DEFAULT_PATIENT_ID,
          studyDescription: 'Avara gateway test fixtures',
          seriesDescription: spec.seriesDescription ?? SERIES_DESCRIPTION[spec.series],
          accession: 'FX0001',
        };
        const elements = [...commonElements(attrs), ...(spec.extra ?? []), ...imagePixelElements(spec.pixels, raw)];
        // The dump file's bytes are copied verbatim into text values, so encode it in the
        // character set the object declares (ISO 8859-1 for ISO_IR 100, else UTF-8/ASCII).
        const encoding: BufferEncoding = spec.charset === 'ISO_IR 100' ? 'latin1' : 'utf8';
        await writeFile(path.join(tmp, raw), makePixels(spec.pixels, seed));
        await writeFile(path.join(tmp, dump), Buffer.from(dumpText(elements), encoding));
        await runTool('dump2dcm', ['-q', spec.write, dump, stage], { cwd: tmp });
        if (spec.encode) {
          await runTool(spec.encode.tool, ['-q', ...spec.encode.args, stage, out], { cwd: tmp });
          await rm(path.join(tmp, stage));
        }
        await rm(path.join(tmp, raw));
        await rm(path.join(tmp, dump));
        const fx = {
          name: spec.name,
          file: out,
          studyUid,
          seriesUid: attrs.seriesUid,
          sopUid,
          sopClassUid: spec.sopClassUid,
          transferSyntax: spec.transferSyntax,
          sizeBytes: (await stat(path.join(tmp, out))).size,
        };
        await verifyWritten(path.join(tmp, out), fx);
        return fx;
      })();
    });
    return Promise.all(jobs);
  });

  return data.map(({ file, ...rest }) => ({ ...rest, path: path.join(dir, file) }));
}

// ---------------------------------------------------------------------------------------------
// One large instance
// ---------------------------------------------------------------------------------------------

/**
 * One Secondary Capture instance, explicit VR little endian, 16-bit MONOCHROME2 with
 * `sizeMiB` MiB of OW pixel data (8192 columns x sizeMiB*64 rows; whole rows, so integral
 * sizes are exact), in its own study. Pixel bytes are streamed to a .raw file and pulled in by
 * dump2dcm (`OW =file.raw`); the .raw file is deleted afterwards.
 */
export async function buildLargeFixture(
  opts: { dir?: string; sizeMiB?: number; studyUid?: string } = {},
): Promise<Fixture> {
  const sizeMiB = opts.sizeMiB ?? 100;
  const cols = 8192;
  const rowBytes = cols * 2;
  const rows = Math.max(1, Math.ceil((sizeMiB * MiB) / rowBytes));
  if (!Number.isFinite(sizeMiB) || sizeMiB <= 0 || rows > 65535) {
    throw new RangeError(`buildLargeFixture: sizeMiB must be in (0, 1023], got ${sizeMiB}`);
  }
  const baseDir = path.resolve(opts.dir ?? DEFAULT_DIR);
  const studyUid = opts.studyUid ?? deriveUid(`large-fixture/v${FIXTURES_VERSION}/${rows}`);
  const key = `large|${studyUid}|${rows}`;
  const finalDir = path.join(baseDir, `v${FIXTURES_VERSION}`, `large-${shortHash(key)}`);

  const { dir, data } = await cached<StoredFixture[]>(finalDir, 'large', key, validateFixtures, async (tmp) => {
    const seriesUid = deriveUid(`${studyUid}/series/large`);
    const sopUid = deriveUid(`${studyUid}/sop/large/${rows}`);
    const raw = 'large.raw';

    // Stream the pixel data in ~4 MiB chunks (a diagonal 16-bit gradient).
    const fh = await open(path.join(tmp, raw), 'w');
    try {
      const rowsPerChunk = 256;
      const chunk = Buffer.alloc(rowsPerChunk * rowBytes);
      const u16 = new Uint16Array(chunk.buffer, chunk.byteOffset, chunk.length / 2);
      const littleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
      for (let y0 = 0; y0 < rows; y0 += rowsPerChunk) {
        const n = Math.min(rowsPerChunk, rows - y0);
        for (let r = 0; r < n; r++) {
          const y = y0 + r;
          const base = r * cols;
          for (let x = 0; x < cols; x++) u16[base + x] = (x * 8 + y * 3) & 0xffff;
        }
        if (!littleEndianHost) chunk.subarray(0, n * rowBytes).swap16();
        await fh.write(chunk, 0, n * rowBytes);
      }
    } finally {
      await fh.close();
    }

    const attrs: CommonAttrs = {
      sopClassUid: SopClass.SecondaryCapture,
      sopUid,
      studyUid,
      seriesUid,
      seriesNumber: 1,
      instanceNumber: 1,
      patientName: 'Fixture^Large',
      patientId: 'AVARA-FX-LARGE',
      studyDescription: `Large instance ${sizeMiB} MiB`,
      seriesDescription: 'Large uncompressed',
      accession: 'FXLARGE',
    };
    const pixels: PixelSpec = { rows, cols, frames: 1, bits: 16, stored: 16 };
    await writeFile(path.join(tmp, 'large.dump'), dumpText([...commonElements(attrs), ...imagePixelElements(pixels, raw)]));
    await runTool('dump2dcm', ['-q', '+te', 'large.dump', 'large.dcm'], { cwd: tmp });
    await rm(path.join(tmp, raw));
    await rm(path.join(tmp, 'large.dump'));
    const fx: StoredFixture = {
      name: 'large',
      file: 'large.dcm',
      studyUid,
      seriesUid,
      sopUid,
      sopClassUid: SopClass.SecondaryCapture,
      transferSyntax: TransferSyntax.ExplicitVRLittleEndian,
      sizeBytes: (await stat(path.join(tmp, 'large.dcm'))).size,
    };
    await verifyWritten(path.join(tmp, 'large.dcm'), fx);
    return [fx];
  });

  const [fx] = data;
  if (!fx) throw new Error('large fixture manifest is empty');
  const { file, ...rest } = fx;
  return { ...rest, path: path.join(dir, file) };
}

// ---------------------------------------------------------------------------------------------
// Many small instances: one dump2dcm template, re-serialised in Node per instance
// ---------------------------------------------------------------------------------------------

/** Explicit VR little endian element with its full encoding. */
interface RawElement {
  tag: number; // (group << 16) | element
  vr: string;
  bytes: Buffer;
}

const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);

/** Split a Part 10 explicit-VR-little-endian file without sequences into elements. */
function splitPart10(buf: Buffer): { meta: RawElement[]; dataset: RawElement[] } {
  if (buf.toString('latin1', 128, 132) !== 'DICM') throw new Error('template is not a Part 10 file');
  const meta: RawElement[] = [];
  const dataset: RawElement[] = [];
  let off = 132;
  while (off < buf.length) {
    const group = buf.readUInt16LE(off);
    const element = buf.readUInt16LE(off + 2);
    const vr = buf.toString('latin1', off + 4, off + 6);
    let header: number;
    let len: number;
    if (LONG_VRS.has(vr)) {
      len = buf.readUInt32LE(off + 8);
      header = 12;
    } else {
      len = buf.readUInt16LE(off + 6);
      header = 8;
    }
    if (len === 0xffffffff) throw new Error('template must not contain undefined-length elements');
    const end = off + header + len;
    if (end > buf.length) throw new Error('template is truncated');
    const el = { tag: ((group << 16) | element) >>> 0, vr, bytes: buf.subarray(off, end) };
    (group === 0x0002 ? meta : dataset).push(el);
    off = end;
  }
  return { meta, dataset };
}

function encodeElement(tag: number, vr: string, value: Buffer): Buffer {
  // Explicit VR little endian: OB/OW/SQ/UN/UT… carry two reserved bytes and a 32-bit length, the rest 16 bits.
  const long = LONG_VRS.has(vr);
  const h = Buffer.alloc(long ? 12 : 8);
  h.writeUInt16LE(tag >>> 16, 0);
  h.writeUInt16LE(tag & 0xffff, 2);
  h.write(vr, 4, 'latin1');
  if (long) h.writeUInt32LE(value.length, 8);
  else h.writeUInt16LE(value.length, 6);
  return Buffer.concat([h, value]);
}

function textValue(vr: string, s: string): Buffer {
  const b = Buffer.from(s, 'latin1');
  if (b.length % 2 === 0) return b;
  return Buffer.concat([b, Buffer.from([vr === 'UI' ? 0x00 : 0x20])]);
}

function tagNum(tag: string): number {
  return parseInt(normTag(tag).replace(',', ''), 16) >>> 0;
}

const T = {
  groupLength: tagNum('0002,0000'),
  mediaSopUid: tagNum('0002,0003'),
  sopUid: tagNum('0008,0018'),
  seriesDescription: tagNum('0008,103e'),
  studyUid: tagNum('0020,000d'),
  seriesUid: tagNum('0020,000e'),
  seriesNumber: tagNum('0020,0011'),
  instanceNumber: tagNum('0020,0013'),
  pixelData: tagNum('7fe0,0010'),
};

async function runPool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!);
    }
  });
  await Promise.all(workers);
}

interface ManyData {
  studyUid: string;
  seriesUids: string[];
  files: string[]; // relative
  sizes: number[];
}

/**
 * A synthetic study of `count` tiny Secondary Capture instances (32x32 8-bit, explicit VR
 * little endian) spread over `series` series (contiguous blocks, default 4). One template is
 * written by dump2dcm; each instance is a copy with rewritten UIDs, Series/InstanceNumber and
 * the instance index stamped into the first pixel bytes (so every file differs).
 * Files are `s<NN>/i<NNNNN>.dcm`, returned in series then instance order.
 */
export async function buildManyInstanceStudy(opts: {
  count: number;
  series?: number;
  dir?: string;
  studyUid?: string;
}): Promise<{ studyUid: string; files: string[]; seriesUids: string[] }> {
  const count = opts.count;
  const nSeries = opts.series ?? 4;
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`count must be a positive integer, got ${count}`);
  if (!Number.isInteger(nSeries) || nSeries < 1 || nSeries > count) {
    throw new RangeError(`series must be an integer in [1, count], got ${nSeries}`);
  }
  const baseDir = path.resolve(opts.dir ?? DEFAULT_DIR);
  const studyUid = opts.studyUid ?? deriveUid(`many-instances/v${FIXTURES_VERSION}/${count}/${nSeries}`);
  const key = `many|${studyUid}|${count}|${nSeries}`;
  const finalDir = path.join(baseDir, `v${FIXTURES_VERSION}`, `many-${count}x${nSeries}-${shortHash(key)}`);

  const validate = async (dir: string, d: ManyData): Promise<boolean> => {
    if (d.files.length !== count || d.sizes.length !== count) return false;
    const bad: string[] = [];
    await runPool(
      d.files.map((f, i) => [f, i] as const),
      64,
      async ([f, i]) => {
        try {
          if ((await stat(path.join(dir, f))).size !== d.sizes[i]) bad.push(f);
        } catch {
          bad.push(f);
        }
      },
    );
    return bad.length === 0 && (await isPart10(path.join(dir, d.files[0]!)));
  };

  const { dir, data } = await cached<ManyData>(finalDir, 'many', key, validate, async (tmp) => {
    const seriesUids = Array.from({ length: nSeries }, (_, s) => deriveUid(`${studyUid}/many-series/${s + 1}`));
    const pixels: PixelSpec = { rows: 32, cols: 32, frames: 1, bits: 8 };
    const placeholder = '1.2.3'; // replaced per instance
    const attrs: CommonAttrs = {
      sopClassUid: SopClass.SecondaryCapture,
      sopUid: placeholder,
      studyUid,
      seriesUid: placeholder,
      seriesNumber: 1,
      instanceNumber: 1,
      patientName: 'Fixture^Many',
      patientId: 'AVARA-FX-MANY',
      studyDescription: `Synthetic study ${count} instances`,
      seriesDescription: 'Synthetic series 1',
      accession: 'FXMANY',
    };
    await writeFile(path.join(tmp, 'template.raw'), makePixels(pixels, 0));
    await writeFile(
      path.join(tmp, 'template.dump'),
      dumpText([...commonElements(attrs), ...imagePixelElements(pixels, 'template.raw')]),
    );
    await runTool('dump2dcm', ['-q', '+te', 'template.dump', 'template.dcm'], { cwd: tmp });
    const template = await readFile(path.join(tmp, 'template.dcm'));
    await Promise.all(['template.raw', 'template.dump', 'template.dcm'].map((f) => rm(path.join(tmp, f))));

    const { meta, dataset } = splitPart10(template);
    const preamble = template.subarray(0, 132);
    const pixelEl = dataset.find((e) => e.tag === T.pixelData);
    if (!pixelEl) throw new Error('template has no PixelData');
    const pixelValue = pixelEl.bytes.subarray(12);

    // Contiguous blocks; the first (count % nSeries) series get one extra instance.
    const per = Math.floor(count / nSeries);
    const extra = count % nSeries;
    const plan: { rel: string; s: number; inst: number; index: number }[] = [];
    let index = 0;
    for (let s = 0; s < nSeries; s++) {
      const n = per + (s < extra ? 1 : 0);
      for (let k = 1; k <= n; k++) {
        plan.push({
          rel: path.join(`s${String(s + 1).padStart(2, '0')}`, `i${String(k).padStart(5, '0')}.dcm`),
          s,
          inst: k,
          index: index++,
        });
      }
    }
    await Promise.all(
      Array.from({ length: nSeries }, (_, s) => mkdir(path.join(tmp, `s${String(s + 1).padStart(2, '0')}`))),
    );

    const sizes: number[] = new Array<number>(count);
    await runPool(plan, 64, async ({ rel, s, inst, index: i }) => {
      const sopUid = deriveUid(`${studyUid}/many-sop/${s + 1}/${inst}`);
      const px = Buffer.from(pixelValue);
      px.writeUInt32LE(i >>> 0, 0); // make every instance's pixel data unique
      const replace = new Map<number, Buffer>([
        [T.mediaSopUid, encodeElement(T.mediaSopUid, 'UI', textValue('UI', sopUid))],
        [T.sopUid, encodeElement(T.sopUid, 'UI', textValue('UI', sopUid))],
        [T.studyUid, encodeElement(T.studyUid, 'UI', textValue('UI', studyUid))],
        [T.seriesUid, encodeElement(T.seriesUid, 'UI', textValue('UI', seriesUids[s]!))],
        [T.seriesNumber, encodeElement(T.seriesNumber, 'IS', textValue('IS', String(s + 1)))],
        [T.instanceNumber, encodeElement(T.instanceNumber, 'IS', textValue('IS', String(inst)))],
        [T.seriesDescription, encodeElement(T.seriesDescription, 'LO', textValue('LO', `Synthetic series ${s + 1}`))],
        [T.pixelData, encodeElement(T.pixelData, pixelEl.vr, px)],
      ]);
      const metaParts = meta.filter((e) => e.tag !== T.groupLength).map((e) => replace.get(e.tag) ?? e.bytes);
      const metaLen = metaParts.reduce((a, b) => a + b.length, 0);
      const gl = Buffer.alloc(4);
      gl.writeUInt32LE(metaLen, 0);
      const parts = [
        preamble,
        encodeElement(T.groupLength, 'UL', gl),
        ...metaParts,
        ...dataset.map((e) => replace.get(e.tag) ?? e.bytes),
      ];
      const out = Buffer.concat(parts);
      sizes[i] = out.length;
      await writeFile(path.join(tmp, rel), out);
    });

    // Sanity check a few outputs with dcmtk (first, last, one in the middle).
    const sample = [...new Set([0, Math.floor(count / 2), count - 1])].map((i) => plan[i]!);
    const dumped = await dcmdumpTagsMany(
      sample.map((p) => path.join(tmp, p.rel)),
      ['0002,0010', '0002,0003', '0008,0018', '0020,000d', '0020,000e'],
    );
    for (const p of sample) {
      const t = dumped.get(path.join(tmp, p.rel)) ?? {};
      const sop = deriveUid(`${studyUid}/many-sop/${p.s + 1}/${p.inst}`);
      if (
        t['0002,0010'] !== TransferSyntax.ExplicitVRLittleEndian ||
        t['0002,0003'] !== sop ||
        t['0008,0018'] !== sop ||
        t['0020,000d'] !== studyUid ||
        t['0020,000e'] !== seriesUids[p.s]
      ) {
        throw new Error(`generated instance ${p.rel} failed dcmdump verification: ${JSON.stringify(t)}`);
      }
    }
    return { studyUid, seriesUids, files: plan.map((p) => p.rel), sizes };
  });

  return {
    studyUid: data.studyUid,
    seriesUids: [...data.seriesUids],
    files: data.files.map((f) => path.join(dir, f)),
  };
}

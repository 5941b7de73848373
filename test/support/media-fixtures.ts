/**
 * Media test objects, made with the tools a hospital's systems use: a PDF wrapped with dcmtk's pdf2dcm,
 * a photograph made with ffmpeg and wrapped with img2dcm, and video clips made with ffmpeg and stored as
 * DICOM video objects (encapsulated pixel data: an empty Basic Offset Table, then the stream in fragments),
 * written here since no dcmtk tool builds those. Each builder writes into `dir` and returns the original
 * file next to the DICOM object, so tests can compare what the gateway serves with it.
 *
 * Requires dcmtk (pdf2dcm, img2dcm, dcmconv) and ffmpeg on PATH.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { newUid } from './fixtures.js';
import { minimalPdf } from './pdf.js';

const run = promisify(execFile);

async function tool(cmd: string, args: string[], cwd: string): Promise<void> {
  try {
    await run(cmd, args, { cwd, maxBuffer: 64 * 1024 * 1024 });
  } catch (err) {
    const e = err as { code?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error(`"${cmd}" is not installed: apt-get install -y --no-install-recommends ffmpeg dcmtk`);
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.stderr ?? String(err)}`);
  }
}

export interface MediaFixture {
  /** The DICOM object to store in the PACS. */
  dicom: string;
  /** The file inside it, as made (PDF, JPEG, MP4 or the raw elementary stream). */
  original: Buffer;
  studyUid: string;
  seriesUid: string;
  sopUid: string;
}

export const MEDIA_PATIENT_NAME = 'Mediapatient^Secret';

/** A one-page PDF of odd length (so the DICOM value carries a pad byte), wrapped with pdf2dcm. */
export async function buildPdfObject(
  dir: string,
  o: { studyUid: string; title: string; seriesDescription?: string; implicitVr?: boolean; name?: string },
): Promise<MediaFixture> {
  const name = o.name ?? 'doc';
  const pdf = minimalPdf({ text: o.title, odd: true });
  await writeFile(path.join(dir, `${name}.pdf`), pdf);
  const seriesUid = newUid();
  const sopUid = newUid();
  const keys = [`0020,000D=${o.studyUid}`, `0020,000E=${seriesUid}`, `0008,0018=${sopUid}`, `0010,0010=${MEDIA_PATIENT_NAME}`];
  if (o.seriesDescription) keys.push(`0008,103E=${o.seriesDescription}`);
  await tool('pdf2dcm', ['+t', o.title, ...keys.flatMap((k) => ['-k', k]), `${name}.pdf`, `${name}.dcm`], dir);
  let dicom = `${name}.dcm`;
  if (o.implicitVr) {
    await tool('dcmconv', ['+ti', dicom, `${name}-implicit.dcm`], dir);
    dicom = `${name}-implicit.dcm`;
  }
  return { dicom: path.join(dir, dicom), original: pdf, studyUid: o.studyUid, seriesUid, sopUid };
}

/** A 320x240 photograph from ffmpeg's test source, wrapped as a Secondary Capture by img2dcm (APPn kept). */
export async function buildJpegObject(dir: string, o: { studyUid: string; seriesDescription: string }): Promise<MediaFixture> {
  await tool('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=1', '-frames:v', '1', 'photo.jpg'], dir);
  const seriesUid = newUid();
  const sopUid = newUid();
  const keys = [`0020,000D=${o.studyUid}`, `0020,000E=${seriesUid}`, `0008,0018=${sopUid}`, `0008,103E=${o.seriesDescription}`, '0008,0060=XC', `0010,0010=${MEDIA_PATIENT_NAME}`];
  await tool('img2dcm', ['--keep-appn', ...keys.flatMap((k) => ['-k', k]), 'photo.jpg', 'photo.dcm'], dir);
  return { dicom: path.join(dir, 'photo.dcm'), original: await readFile(path.join(dir, 'photo.jpg')), studyUid: o.studyUid, seriesUid, sopUid };
}

export const VIDEO_FRAMES = 30;

export const VideoSyntax = {
  Mpeg2MainProfile: '1.2.840.10008.1.2.4.100',
  H264HighProfile: '1.2.840.10008.1.2.4.102',
} as const;

/**
 * A 30-frame clip (libx264, High profile with B-frames) as an Annex B elementary stream, or as an MP4 file,
 * or MPEG-2 video, stored in a Video Photographic Image object split over `fragments` pixel data fragments.
 */
export async function buildVideoObject(
  dir: string,
  o: { studyUid: string; seriesDescription: string; codec?: 'h264' | 'mp4' | 'mpeg2'; fragments?: number; name?: string },
): Promise<MediaFixture> {
  const codec = o.codec ?? 'h264';
  const name = o.name ?? `clip-${codec}`;
  const source = ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=30', '-frames:v', String(VIDEO_FRAMES), '-pix_fmt', 'yuv420p'];
  const out = `${name}.${codec === 'mp4' ? 'mp4' : codec === 'mpeg2' ? 'm2v' : 'h264'}`;
  const encode =
    codec === 'h264'
      ? ['-c:v', 'libx264', '-profile:v', 'high', '-bsf:v', 'h264_mp4toannexb', '-f', 'h264']
      : codec === 'mp4'
        ? ['-c:v', 'libx264', '-profile:v', 'high', '-movflags', '+faststart', '-f', 'mp4']
        : ['-c:v', 'mpeg2video', '-f', 'mpeg2video'];
  await tool('ffmpeg', [...source, ...encode, out], dir);
  const original = await readFile(path.join(dir, out));
  const seriesUid = newUid();
  const sopUid = newUid();
  const syntax = codec === 'mpeg2' ? VideoSyntax.Mpeg2MainProfile : VideoSyntax.H264HighProfile;
  const file = videoPart10({ studyUid: o.studyUid, seriesUid, sopUid, transferSyntax: syntax, seriesDescription: o.seriesDescription, stream: original, fragments: o.fragments ?? 3 });
  const dicom = path.join(dir, `${name}.dcm`);
  await writeFile(dicom, file);
  return { dicom, original, studyUid: o.studyUid, seriesUid, sopUid };
}

/** A small CT image (native pixels): an object that is not media. */
export async function buildCtObject(dir: string, o: { studyUid: string; seriesUid?: string }): Promise<MediaFixture> {
  const seriesUid = o.seriesUid ?? newUid();
  const sopUid = newUid();
  const pixels = Buffer.alloc(16 * 16 * 2, 7);
  const file = part10('1.2.840.10008.5.1.4.1.1.2', sopUid, '1.2.840.10008.1.2.1', [
    el(0x00080016, 'UI', '1.2.840.10008.5.1.4.1.1.2'),
    el(0x00080018, 'UI', sopUid),
    el(0x00080060, 'CS', 'CT'),
    el(0x00100010, 'PN', MEDIA_PATIENT_NAME),
    el(0x0020000d, 'UI', o.studyUid),
    el(0x0020000e, 'UI', seriesUid),
    el(0x00280002, 'US', u16(1)),
    el(0x00280004, 'CS', 'MONOCHROME2'),
    el(0x00280010, 'US', u16(16)),
    el(0x00280011, 'US', u16(16)),
    el(0x00280100, 'US', u16(16)),
    el(0x00280101, 'US', u16(12)),
    el(0x00280102, 'US', u16(11)),
    el(0x00280103, 'US', u16(0)),
    el(0x7fe00010, 'OW', pixels),
  ]);
  const dicom = path.join(dir, `ct-${sopUid}.dcm`);
  await writeFile(dicom, file);
  return { dicom, original: pixels, studyUid: o.studyUid, seriesUid, sopUid };
}

function videoPart10(o: { studyUid: string; seriesUid: string; sopUid: string; transferSyntax: string; seriesDescription: string; stream: Buffer; fragments: number }): Buffer {
  const sopClass = '1.2.840.10008.5.1.4.1.1.77.1.4.1'; // Video Photographic Image Storage
  // An undefined-length sequence with an undefined-length item, as many modalities write them.
  const region = Buffer.concat([
    Buffer.from([0x08, 0x00, 0x18, 0x22, 0x53, 0x51, 0, 0, 0xff, 0xff, 0xff, 0xff]), // (0008,2218) SQ, undefined length
    Buffer.from([0xfe, 0xff, 0x00, 0xe0, 0xff, 0xff, 0xff, 0xff]), // item, undefined length
    el(0x00080100, 'SH', 'T-D0050'),
    el(0x00080102, 'SH', 'SRT'),
    Buffer.from([0xfe, 0xff, 0x0d, 0xe0, 0, 0, 0, 0]), // item delimiter
    Buffer.from([0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]), // sequence delimiter
  ]);
  const size = Math.ceil(o.stream.length / o.fragments / 2) * 2;
  const items = [item(Buffer.alloc(0))];
  for (let at = 0; at < o.stream.length; at += size) items.push(item(o.stream.subarray(at, at + size)));
  const pixelData = Buffer.concat([Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x42, 0, 0, 0xff, 0xff, 0xff, 0xff]), ...items, Buffer.from([0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0])]);
  return part10(sopClass, o.sopUid, o.transferSyntax, [
    el(0x00080016, 'UI', sopClass),
    el(0x00080018, 'UI', o.sopUid),
    el(0x00080060, 'CS', 'XC'),
    el(0x0008103e, 'LO', o.seriesDescription),
    region,
    el(0x00100010, 'PN', MEDIA_PATIENT_NAME),
    el(0x00100020, 'LO', 'MEDIA-001'),
    el(0x00180040, 'IS', '30'),
    el(0x00181063, 'DS', '33.3333'),
    el(0x0020000d, 'UI', o.studyUid),
    el(0x0020000e, 'UI', o.seriesUid),
    el(0x00200011, 'IS', '1'),
    el(0x00200013, 'IS', '1'),
    el(0x00280002, 'US', u16(3)),
    el(0x00280004, 'CS', 'YBR_PARTIAL_420'),
    el(0x00280006, 'US', u16(0)),
    el(0x00280008, 'IS', String(VIDEO_FRAMES)),
    el(0x00280009, 'AT', Buffer.from([0x18, 0x00, 0x63, 0x10])),
    el(0x00280010, 'US', u16(240)),
    el(0x00280011, 'US', u16(320)),
    el(0x00280100, 'US', u16(8)),
    el(0x00280101, 'US', u16(8)),
    el(0x00280102, 'US', u16(7)),
    el(0x00280103, 'US', u16(0)),
    pixelData,
  ]);
}

/** Preamble, file meta information (explicit VR little endian) and the dataset's encoded elements. */
function part10(sopClass: string, sopUid: string, transferSyntax: string, dataset: Buffer[]): Buffer {
  const meta = Buffer.concat([
    el(0x00020001, 'OB', Buffer.from([0, 1])),
    el(0x00020002, 'UI', sopClass),
    el(0x00020003, 'UI', sopUid),
    el(0x00020010, 'UI', transferSyntax),
    el(0x00020012, 'UI', '1.2.826.0.1.3680043.10.1492.1'),
  ]);
  const groupLength = Buffer.alloc(4);
  groupLength.writeUInt32LE(meta.length);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), el(0x00020000, 'UL', groupLength), meta, ...dataset]);
}

const LONG_VRS = new Set(['OB', 'OW', 'SQ', 'UN', 'UT']);

function el(tag: number, vr: string, value: string | Buffer): Buffer {
  let v = typeof value === 'string' ? Buffer.from(value, 'latin1') : value;
  if (v.length % 2 === 1) v = Buffer.concat([v, Buffer.from([vr === 'UI' || vr === 'OB' ? 0 : 0x20])]);
  const long = LONG_VRS.has(vr);
  const h = Buffer.alloc(long ? 12 : 8);
  h.writeUInt16LE(tag >>> 16, 0);
  h.writeUInt16LE(tag & 0xffff, 2);
  h.write(vr, 4, 'latin1');
  if (long) h.writeUInt32LE(v.length, 8);
  else h.writeUInt16LE(v.length, 6);
  return Buffer.concat([h, v]);
}

function item(value: Buffer): Buffer {
  const v = value.length % 2 === 1 ? Buffer.concat([value, Buffer.alloc(1)]) : value;
  const h = Buffer.from([0xfe, 0xff, 0x00, 0xe0, 0, 0, 0, 0]);
  h.writeUInt32LE(v.length, 4);
  return Buffer.concat([h, v]);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
}

import { DicomFormatError, TransferSyntaxes } from '../uploads/dicom-header.js';
import { ByteReader } from './byte-reader.js';

/**
 * A streaming walk over a Part 10 object to the one element a media link serves (the Encapsulated
 * Document, or the Pixel Data), collecting a few short top-level values on the way. Explicit and implicit
 * VR little endian (and explicit big endian) datasets; sequences and items of defined or undefined length,
 * nested, are skipped by counting. Nothing is allocated by a declared length beyond MAX_VALUE.
 *
 * It differs from the upload walker (src/uploads/dicom-header.ts) in being pull-based: the caller gets the
 * reader positioned at the value and streams the value itself.
 */

export const Tags = {
  TransferSyntaxUID: 0x00020010,
  SpecificCharacterSet: 0x00080005,
  SOPClassUID: 0x00080016,
  SeriesDescription: 0x0008103e,
  RecommendedDisplayFrameRate: 0x00082144,
  CineRate: 0x00180040,
  FrameTime: 0x00181063,
  InstanceNumber: 0x00200013,
  NumberOfFrames: 0x00280008,
  Rows: 0x00280010,
  Columns: 0x00280011,
  DocumentTitle: 0x00420010,
  EncapsulatedDocument: 0x00420011,
  PixelData: 0x7fe00010,
} as const;

const ITEM = 0xfffee000;
const ITEM_END = 0xfffee00d;
const SEQUENCE_END = 0xfffee0dd;
const UNDEFINED = 0xffffffff;
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
const MAX_VALUE = 1024;
const MAX_DEPTH = 32;

interface Encoding {
  explicit: boolean;
  little: boolean;
}
const EXPLICIT_LE: Encoding = { explicit: true, little: true };
const IMPLICIT_LE: Encoding = { explicit: false, little: true };

export interface ElementHeader {
  tag: number;
  vr?: string;
  /** undefined: undefined length (a sequence, or encapsulated pixel data). */
  length: number | undefined;
}

export interface Walked {
  transferSyntaxUid: string;
  little: boolean;
  /** Short top-level values met before the target, raw (copied). */
  values: Map<number, Buffer>;
  /** The element the walk stopped at, its value not yet read; absent when the dataset ended first. */
  target?: ElementHeader;
}

/**
 * Reads the preamble, file meta and dataset up to the first top-level element in `targets`. `wanted`
 * names top-level elements whose (short) values to keep.
 */
export async function walkTo(reader: ByteReader, targets: ReadonlySet<number>, wanted: ReadonlySet<number> = new Set()): Promise<Walked> {
  const preamble = await reader.read(132, 'the preamble');
  if (preamble.toString('latin1', 128, 132) !== 'DICM') throw new DicomFormatError('not_dicom', 'not a DICOM Part 10 object: no "DICM" after the preamble');

  const values = new Map<number, Buffer>();
  let first: Buffer | undefined;
  for (;;) {
    const head = await reader.read(8, 'the file meta information');
    if (head.readUInt16LE(0) !== 0x0002) {
      first = Buffer.from(head); // the dataset's first element header
      break;
    }
    const el = await readHeader(reader, EXPLICIT_LE, head);
    if (el.length === undefined) throw malformed(reader, 'undefined length in the file meta information');
    await keepOrSkip(reader, el, el.tag === Tags.TransferSyntaxUID ? new Set([el.tag]) : wanted, values, EXPLICIT_LE, 0);
  }
  const ts = text(values, Tags.TransferSyntaxUID);
  if (!ts) throw new DicomFormatError('not_dicom', 'the file meta information has no Transfer Syntax UID (0002,0010)');
  if (ts === TransferSyntaxes.deflated) throw new DicomFormatError('unsupported_transfer_syntax', 'deflated datasets are not walked');
  const enc: Encoding = ts === TransferSyntaxes.implicitLittle ? IMPLICIT_LE : ts === TransferSyntaxes.explicitBig ? { explicit: true, little: false } : EXPLICIT_LE;

  let pending: Buffer | undefined = first;
  for (;;) {
    if (!pending && (await reader.atEnd())) return { transferSyntaxUid: ts, little: enc.little, values };
    const el = await readHeader(reader, enc, pending);
    pending = undefined;
    if (targets.has(el.tag)) return { transferSyntaxUid: ts, little: enc.little, values, target: el };
    await keepOrSkip(reader, el, wanted, values, enc, 0);
  }
}

/**
 * The next item of an encapsulated Pixel Data value (reader positioned after its element header or after
 * the previous item's value): the item's length, or undefined at the sequence delimiter.
 */
export async function nextFragment(reader: ByteReader, little: boolean): Promise<number | undefined> {
  const h = await reader.read(8, 'the encapsulated pixel data');
  const tag = tagOf(h, little);
  const length = little ? h.readUInt32LE(4) : h.readUInt32BE(4);
  if (tag === SEQUENCE_END) return undefined;
  if (tag !== ITEM || length === UNDEFINED) throw malformed(reader, `expected a pixel data item, found ${tagText(tag)}`);
  return length;
}

export function text(values: Map<number, Buffer>, tag: number): string | undefined {
  const v = values.get(tag);
  if (!v) return undefined;
  const utf8 = /ISO_IR 192/.test(values.get(Tags.SpecificCharacterSet)?.toString('latin1') ?? '');
  const s = v
    .toString(utf8 ? 'utf8' : 'latin1')
    .replace(/[\0 ]+$/, '')
    .trim();
  return s === '' ? undefined : s;
}

/** A decimal or integer string value (DS, IS), first of its values. */
export function decimal(values: Map<number, Buffer>, tag: number): number | undefined {
  const s = text(values, tag)?.split('\\')[0];
  if (s === undefined) return undefined;
  const n = Number(s);
  return Number.isFinite(n) ? n : undefined;
}

async function readHeader(reader: ByteReader, enc: Encoding, first8?: Buffer): Promise<ElementHeader> {
  const h = first8 ?? (await reader.read(8, 'an element header'));
  const tag = tagOf(h, enc.little);
  if (tag === ITEM || tag === ITEM_END || tag === SEQUENCE_END) {
    const length = enc.little ? h.readUInt32LE(4) : h.readUInt32BE(4);
    return { tag, length: length === UNDEFINED ? undefined : length };
  }
  if (!enc.explicit) {
    const length = enc.little ? h.readUInt32LE(4) : h.readUInt32BE(4);
    return { tag, length: length === UNDEFINED ? undefined : length };
  }
  const vr = h.toString('latin1', 4, 6);
  if (!/^[A-Z]{2}$/.test(vr)) throw malformed(reader, `element ${tagText(tag)} has no valid VR`);
  if (!LONG_VRS.has(vr)) return { tag, vr, length: enc.little ? h.readUInt16LE(6) : h.readUInt16BE(6) };
  const l = await reader.read(4, 'an element header');
  const length = enc.little ? l.readUInt32LE(0) : l.readUInt32BE(0);
  return { tag, vr, length: length === UNDEFINED ? undefined : length };
}

async function keepOrSkip(reader: ByteReader, el: ElementHeader, wanted: ReadonlySet<number>, values: Map<number, Buffer>, enc: Encoding, depth: number): Promise<void> {
  if (el.length === undefined) {
    // PS3.5 6.2.2: an undefined-length UN holds an implicit VR little endian sequence.
    await skipSequence(reader, el.vr === 'UN' ? IMPLICIT_LE : enc, depth + 1);
    return;
  }
  if (wanted.has(el.tag) && el.length <= MAX_VALUE) {
    values.set(el.tag, Buffer.from(await reader.read(el.length, tagText(el.tag))));
    return;
  }
  await reader.skip(el.length, tagText(el.tag));
}

/** Items up to the sequence delimiter; each item is skipped whole (defined length) or walked (undefined). */
async function skipSequence(reader: ByteReader, enc: Encoding, depth: number): Promise<void> {
  if (depth > MAX_DEPTH) throw malformed(reader, 'sequences nested too deeply');
  for (;;) {
    const h = await reader.read(8, 'a sequence');
    const tag = tagOf(h, enc.little);
    const length = enc.little ? h.readUInt32LE(4) : h.readUInt32BE(4);
    if (tag === SEQUENCE_END) return;
    if (tag !== ITEM) throw malformed(reader, `expected an item in a sequence, found ${tagText(tag)}`);
    if (length !== UNDEFINED) {
      await reader.skip(length, 'a sequence item');
      continue;
    }
    for (;;) {
      const el = await readHeader(reader, enc);
      if (el.tag === ITEM_END) break;
      if (el.tag === ITEM || el.tag === SEQUENCE_END) throw malformed(reader, `unexpected ${tagText(el.tag)} in an item`);
      await keepOrSkip(reader, el, new Set(), new Map(), enc, depth);
    }
  }
}

function tagOf(h: Buffer, little: boolean): number {
  const g = little ? h.readUInt16LE(0) : h.readUInt16BE(0);
  const e = little ? h.readUInt16LE(2) : h.readUInt16BE(2);
  return ((g << 16) | e) >>> 0;
}

export function tagText(tag: number): string {
  const h = tag.toString(16).padStart(8, '0').toUpperCase();
  return `(${h.slice(0, 4)},${h.slice(4)})`;
}

function malformed(reader: ByteReader, what: string): DicomFormatError {
  return new DicomFormatError('not_dicom', `malformed DICOM near byte ${reader.position}: ${what}`);
}

/**
 * An incremental Part 10 walker for uploads. It is fed the body chunk by chunk as it streams through:
 * from the first bytes it reads the file meta and the few dataset attributes an upload is checked against
 * (SOP Class/Instance, Study and Series UIDs); for the whole body it follows the element framing, so a file
 * that stops inside an element is caught before the archive is sent the end of the request.
 *
 * It never allocates by a declared length: values are skipped by counting, and only the handful of UID
 * values it needs (at most MAX_VALUE bytes each) are copied. dcmjs trusts declared lengths (see
 * FIELD-NOTES), which is why this is not dcmjs.
 */

export type DicomFormatCode = 'not_dicom' | 'truncated' | 'unsupported_transfer_syntax';

export class DicomFormatError extends Error {
  constructor(
    readonly code: DicomFormatCode,
    message: string,
  ) {
    super(message);
    this.name = 'DicomFormatError';
  }
}

export interface DicomHeader {
  transferSyntaxUid?: string;
  mediaStorageSopClassUid?: string;
  mediaStorageSopInstanceUid?: string;
  sopClassUid?: string;
  sopInstanceUid?: string;
  studyInstanceUid?: string;
  seriesInstanceUid?: string;
}

export const TransferSyntaxes = {
  implicitLittle: '1.2.840.10008.1.2',
  explicitBig: '1.2.840.10008.1.2.2',
  deflated: '1.2.840.10008.1.2.1.99',
} as const;

interface Encoding {
  explicit: boolean;
  little: boolean;
}

/** A dataset (top level or an undefined-length item) reads elements; a sequence reads items. */
interface Frame {
  kind: 'meta' | 'dataset' | 'sequence';
  enc: Encoding;
}

const META: Encoding = { explicit: true, little: true };
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
const UNDEFINED = 0xffffffff;
const ITEM = 0xfffee000;
const ITEM_END = 0xfffee00d;
const SEQUENCE_END = 0xfffee0dd;
/** Longest value copied: UIDs are at most 64 bytes; anything longer is kept as invalid. */
const MAX_VALUE = 128;
const MAX_DEPTH = 32;

const META_TAGS: Record<number, keyof DicomHeader> = {
  0x00020002: 'mediaStorageSopClassUid',
  0x00020003: 'mediaStorageSopInstanceUid',
  0x00020010: 'transferSyntaxUid',
};
const DATASET_TAGS: Record<number, keyof DicomHeader> = {
  0x00080016: 'sopClassUid',
  0x00080018: 'sopInstanceUid',
  0x0020000d: 'studyInstanceUid',
  0x0020000e: 'seriesInstanceUid',
};
/** The last attribute the header check needs; a top-level tag past it completes the header. */
const LAST_HEADER_TAG = 0x0020000e;

export class Part10Walker {
  /** Bytes consumed so far. */
  offset = 0;
  /** The header attributes are known (a later top-level tag was seen) or the body ended. */
  headerComplete = false;
  private readonly values: DicomHeader = {};
  private readonly stack: Frame[] = [{ kind: 'meta', enc: META }];
  private preamble = Buffer.alloc(132);
  private preambleFill = 0;
  private readonly hdr = Buffer.alloc(12);
  private hdrFill = 0;
  private skip = 0;
  private value?: { key: keyof DicomHeader; buf: Buffer; fill: number };

  get header(): DicomHeader {
    return { ...this.values };
  }

  /** Consumes one chunk; throws DicomFormatError as soon as the framing is wrong. */
  feed(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      const n = this.step(chunk, i);
      i += n;
      this.offset += n;
    }
  }

  /** Consumes what it can from chunk[i..] in the current state; returns how many bytes. */
  private step(chunk: Buffer, i: number): number {
    const available = chunk.length - i;
    if (this.preambleFill < 132) {
      const n = Math.min(132 - this.preambleFill, available);
      chunk.copy(this.preamble, this.preambleFill, i, i + n);
      this.preambleFill += n;
      if (this.preambleFill === 132) this.checkPreamble();
      return n;
    }
    if (this.skip > 0) {
      const n = Math.min(this.skip, available);
      this.skip -= n;
      return n;
    }
    if (this.value) {
      const v = this.value;
      const n = Math.min(v.buf.length - v.fill, available);
      chunk.copy(v.buf, v.fill, i, i + n);
      v.fill += n;
      if (v.fill === v.buf.length) this.valueRead(v.key, uidText(v.buf));
      return n;
    }
    const n = Math.min(this.headerLength() - this.hdrFill, available);
    chunk.copy(this.hdr, this.hdrFill, i, i + n);
    this.hdrFill += n;
    if (this.hdrFill === 8 && this.stack[0]!.kind === 'meta' && this.hdr.readUInt16LE(0) !== 0x0002) {
      // The first element outside group 0002: the meta is over, and these bytes start the dataset.
      this.startDataset();
    }
    if (this.hdrFill === this.headerLength()) this.onElementHeader();
    return n;
  }

  private valueRead(key: keyof DicomHeader, text: string): void {
    this.values[key] = text;
    this.value = undefined;
    if (key === 'transferSyntaxUid' && text === TransferSyntaxes.deflated) {
      throw new DicomFormatError('unsupported_transfer_syntax', 'deflated transfer syntax is not accepted: its header cannot be checked without inflating it');
    }
  }

  /** The body ended: throws `truncated` unless it ended between two top-level elements. */
  end(): void {
    this.headerComplete = true;
    if (this.preambleFill < 132) throw new DicomFormatError('not_dicom', `not a DICOM Part 10 file: ${this.offset} bytes, too short for the preamble and "DICM" prefix`);
    const top = this.stack[this.stack.length - 1]!;
    if (top.kind === 'meta') throw new DicomFormatError('truncated', 'the body ends inside the file meta information');
    if (this.skip > 0 || this.value || this.hdrFill > 0 || this.stack.length > 1) {
      throw new DicomFormatError('truncated', `the body ends inside a DICOM element (after ${this.offset} bytes)`);
    }
  }

  private checkPreamble(): void {
    if (this.preamble.toString('latin1', 128, 132) !== 'DICM') {
      throw new DicomFormatError('not_dicom', 'not a DICOM Part 10 file: no "DICM" prefix after the 128-byte preamble');
    }
    this.preamble = Buffer.alloc(0);
  }

  /** Bytes of element header needed so far: 8, or 12 once an explicit long VR was seen. */
  private headerLength(): number {
    if (this.hdrFill < 8) return 8;
    const top = this.stack[this.stack.length - 1]!;
    const enc = top.kind === 'meta' ? META : top.enc;
    const tag = this.tagAt(enc);
    if (top.kind === 'sequence' || isDelimiter(tag) || !enc.explicit) return 8;
    return LONG_VRS.has(this.hdr.toString('latin1', 4, 6)) ? 12 : 8;
  }

  private tagAt(enc: Encoding): number {
    const g = enc.little ? this.hdr.readUInt16LE(0) : this.hdr.readUInt16BE(0);
    const e = enc.little ? this.hdr.readUInt16LE(2) : this.hdr.readUInt16BE(2);
    return ((g << 16) | e) >>> 0;
  }

  private onElementHeader(): void {
    const top = this.stack[this.stack.length - 1]!;
    const enc = top.enc;
    const tag = this.tagAt(enc);
    this.hdrFill = 0;

    if (top.kind === 'sequence') {
      const length = this.u32(enc, 4);
      if (tag === SEQUENCE_END) {
        this.stack.pop();
        return;
      }
      if (tag !== ITEM) throw this.malformed(`expected an item in a sequence, found ${tagText(tag)}`);
      if (length === UNDEFINED) this.push({ kind: 'dataset', enc });
      else this.skip = length;
      return;
    }

    if (tag === ITEM_END && top.kind === 'dataset' && this.stack.length > 1) {
      this.stack.pop();
      return;
    }
    if (isDelimiter(tag)) throw this.malformed(`unexpected ${tagText(tag)} in a dataset`);

    let vr: string | undefined;
    let length: number;
    if (enc.explicit) {
      vr = this.hdr.toString('latin1', 4, 6);
      if (!/^[A-Z]{2}$/.test(vr)) throw this.malformed(`element ${tagText(tag)} has no valid VR`);
      length = LONG_VRS.has(vr) ? this.u32(enc, 8) : enc.little ? this.hdr.readUInt16LE(6) : this.hdr.readUInt16BE(6);
    } else {
      length = this.u32(enc, 4);
    }

    if (top.kind === 'meta' && (tag >>> 16) !== 0x0002) throw this.malformed('file meta information is not group 0002');
    const topLevel = this.stack.length === 1;
    if (topLevel && top.kind === 'dataset' && tag > LAST_HEADER_TAG) this.headerComplete = true;

    if (length === UNDEFINED) {
      if (enc.explicit && vr !== 'SQ' && vr !== 'OB' && vr !== 'OW' && vr !== 'UN') {
        throw this.malformed(`element ${tagText(tag)} (${vr}) cannot have an undefined length`);
      }
      if (top.kind === 'meta') throw this.malformed('undefined length in the file meta information');
      // PS3.5 6.2.2: an undefined-length UN holds an implicit VR little endian sequence.
      this.push({ kind: 'sequence', enc: vr === 'UN' ? { explicit: false, little: true } : enc });
      return;
    }

    const key = topLevel ? (top.kind === 'meta' ? META_TAGS[tag] : DATASET_TAGS[tag]) : undefined;
    if (key && length <= MAX_VALUE) {
      if (length === 0) this.values[key] = '';
      else this.value = { key, buf: Buffer.alloc(length), fill: 0 };
    } else {
      if (key) this.values[key] = '(too long)';
      this.skip = length;
    }
  }

  private startDataset(): void {
    const ts = this.values.transferSyntaxUid;
    if (!ts) throw new DicomFormatError('not_dicom', 'the file meta information has no Transfer Syntax UID (0002,0010)');
    const enc: Encoding =
      ts === TransferSyntaxes.implicitLittle ? { explicit: false, little: true } : ts === TransferSyntaxes.explicitBig ? { explicit: true, little: false } : { explicit: true, little: true };
    this.stack[0] = { kind: 'dataset', enc };
  }

  private push(frame: Frame): void {
    if (this.stack.length >= MAX_DEPTH) throw this.malformed('sequences nested too deeply');
    this.stack.push(frame);
  }

  private u32(enc: Encoding, at: number): number {
    return enc.little ? this.hdr.readUInt32LE(at) : this.hdr.readUInt32BE(at);
  }

  private malformed(what: string): DicomFormatError {
    return new DicomFormatError('not_dicom', `malformed DICOM near byte ${this.offset}: ${what}`);
  }
}

function isDelimiter(tag: number): boolean {
  return tag === ITEM || tag === ITEM_END || tag === SEQUENCE_END;
}

function tagText(tag: number): string {
  const h = tag.toString(16).padStart(8, '0').toUpperCase();
  return `(${h.slice(0, 4)},${h.slice(4)})`;
}

/** UI values are padded with NUL (and sometimes spaces) to an even length. */
function uidText(buf: Buffer): string {
  return buf.toString('latin1').replace(/[\0 ]+$/, '').replace(/^ +/, '');
}

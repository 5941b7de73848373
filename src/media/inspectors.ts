/**
 * Checks run over stored media bytes as they stream past, without keeping them: each is fed the value
 * chunk by chunk and then says how many of those bytes are the file (DICOM pads values to an even length,
 * so one trailing byte may not be) or why the bytes are not what the link promises.
 */

export class MediaFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MediaFormatError';
  }
}

export interface Inspector {
  feed(chunk: Buffer): void;
  /** Bytes of the file: the value's length, less a pad byte. Throws MediaFormatError when the bytes are not the kind promised. */
  finish(): number;
}

/** Keeps the first and last few bytes of what it is fed. */
class Ends {
  total = 0;
  head = Buffer.alloc(0);
  tail = Buffer.alloc(0);
  constructor(
    private readonly headBytes: number,
    private readonly tailBytes: number,
  ) {}
  feed(chunk: Buffer): void {
    this.total += chunk.length;
    if (this.head.length < this.headBytes) this.head = Buffer.concat([this.head, chunk.subarray(0, this.headBytes - this.head.length)]);
    const t = chunk.length >= this.tailBytes ? chunk.subarray(chunk.length - this.tailBytes) : Buffer.concat([this.tail, chunk]);
    this.tail = Buffer.from(t.subarray(Math.max(0, t.length - this.tailBytes)));
  }
}

/** An Encapsulated Document holding a PDF: `%PDF-` first; a NUL after the last `%%EOF` is DICOM's pad. */
export class PdfInspector implements Inspector {
  private readonly ends = new Ends(5, 1024);
  feed(chunk: Buffer): void {
    this.ends.feed(chunk);
  }
  finish(): number {
    const { head, tail, total } = this.ends;
    if (head.toString('latin1') !== '%PDF-') throw new MediaFormatError('the encapsulated document is not a PDF');
    const padded = total > 0 && tail[tail.length - 1] === 0 && tail.lastIndexOf('%%EOF') >= 0;
    return padded ? total - 1 : total;
  }
}

/**
 * A JPEG a browser decodes: SOI, then markers up to a Start Of Frame that is baseline, extended or
 * progressive Huffman with 8-bit samples (not lossless, arithmetic or 12-bit). A NUL after EOI is a pad.
 */
export class JpegInspector implements Inspector {
  private readonly ends = new Ends(2, 3);
  private state: 'marker' | 'code' | 'length' | 'skip' | 'sof' | 'done' = 'marker';
  private marker = 0;
  private need = 0;
  private acc: number[] = [];
  private sof?: { marker: number; precision: number };
  private offset = 0;

  feed(chunk: Buffer): void {
    this.ends.feed(chunk);
    for (let i = 0; i < chunk.length && this.state !== 'done'; i++) this.step(chunk[i]!);
    this.offset += chunk.length;
  }

  private step(b: number): void {
    switch (this.state) {
      case 'marker':
        if (b !== 0xff) throw new MediaFormatError('the pixel data is not a JPEG codestream');
        this.state = 'code';
        return;
      case 'code':
        if (b === 0xff) return; // fill bytes
        this.marker = b;
        if (b === 0xd8 || (b >= 0xd0 && b <= 0xd7) || b === 0x01) {
          this.state = 'marker';
          return;
        }
        if (b === 0xd9 || b === 0xda) {
          this.state = 'done'; // image data before any frame header: judged in finish()
          return;
        }
        this.state = 'length';
        this.acc = [];
        return;
      case 'length':
        this.acc.push(b);
        if (this.acc.length < 2) return;
        this.need = ((this.acc[0]! << 8) | this.acc[1]!) - 2;
        if (this.need < 0) throw new MediaFormatError('a JPEG marker segment has an invalid length');
        if (isSof(this.marker)) {
          this.state = 'sof';
          return;
        }
        this.state = this.need > 0 ? 'skip' : 'marker';
        return;
      case 'sof':
        this.sof = { marker: this.marker, precision: b };
        this.state = 'done';
        return;
      case 'skip':
        if (--this.need === 0) this.state = 'marker';
        return;
      default:
        return;
    }
  }

  finish(): number {
    const { head, tail, total } = this.ends;
    if (head[0] !== 0xff || head[1] !== 0xd8) throw new MediaFormatError('the pixel data is not a JPEG codestream');
    if (!this.sof) throw new MediaFormatError('the JPEG codestream has no frame header');
    if (![0xc0, 0xc1, 0xc2].includes(this.sof.marker) || this.sof.precision !== 8) {
      throw new MediaFormatError(`JPEG process SOF${this.sof.marker - 0xc0} with ${this.sof.precision}-bit samples is not displayed by browsers`);
    }
    const padded = tail.length === 3 && tail[0] === 0xff && tail[1] === 0xd9 && tail[2] === 0;
    return padded ? total - 1 : total;
  }
}

function isSof(m: number): boolean {
  return m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
}

/** An ISO BMFF (MP4) file: top-level boxes from `ftyp`; bytes after the last whole box (a pad) are not served. */
export class Mp4Inspector implements Inspector {
  private header: number[] = [];
  private skip = 0;
  private end = 0;
  private offset = 0;
  private toEnd = false;
  private first = true;

  feed(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length && !this.toEnd) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        i += n;
        continue;
      }
      this.header.push(chunk[i++]!);
      const h = this.header;
      if (h.length < 8) continue;
      const size32 = ((h[0]! << 24) >>> 0) + (h[1]! << 16) + (h[2]! << 8) + h[3]!;
      if (this.first) {
        if (String.fromCharCode(h[4]!, h[5]!, h[6]!, h[7]!) !== 'ftyp') throw new MediaFormatError('the stored video is not an MP4 file');
        this.first = false;
      }
      if (size32 === 1 && h.length < 16) continue;
      const size = size32 === 1 ? Number(Buffer.from(h.slice(8, 16)).readBigUInt64BE()) : size32;
      if (size32 === 0) {
        this.toEnd = true;
        break;
      }
      if (size < h.length) throw new MediaFormatError('an MP4 box has an invalid size');
      this.skip = size - h.length;
      this.end = this.offset + i - h.length + size;
      this.header = [];
    }
    this.offset += chunk.length;
  }

  finish(): number {
    if (this.first) throw new MediaFormatError('the stored video is not an MP4 file');
    if (this.toEnd) return this.offset;
    if (this.end > this.offset) throw new MediaFormatError('the stored MP4 file is truncated');
    return this.end;
  }
}

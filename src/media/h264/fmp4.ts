import type { Sps } from './h264-syntax.js';

/**
 * Fragmented MP4 (ISO/IEC 14496-12 and -15) for one H.264 video track: an initialisation segment (ftyp +
 * moov with an avc1/avcC sample entry and mvex) and media fragments (moof + mdat). Sample composition
 * offsets are signed (trun version 1), so presentation starts at 0 without an edit list, as CMAF does.
 */

export interface Fmp4Sample {
  /** AVC sample: each NAL unit behind a 4-byte length. */
  data: Buffer[];
  size: number;
  duration: number;
  /** Presentation minus decode time, in timescale units (may be negative). */
  compositionOffset: number;
  sync: boolean;
}

export function initSegment(o: { sps: Sps[]; pps: Buffer[]; timescale: number; duration?: number }): Buffer {
  const main = o.sps[0]!;
  const ftyp = box('ftyp', Buffer.from('iso6'), u32(0), Buffer.from('iso6isomiso5avc1mp41'));
  const mvhd = fullBox('mvhd', 0, 0, u32(0), u32(0), u32(o.timescale), u32(0), u32(0x00010000), u16(0x0100), zeros(10), matrix(), zeros(24), u32(2));
  const tkhd = fullBox('tkhd', 0, 3, u32(0), u32(0), u32(1), u32(0), u32(0), zeros(8), u16(0), u16(0), u16(0), u16(0), matrix(), u32(main.width * 65536), u32(main.height * 65536));
  const mdhd = fullBox('mdhd', 0, 0, u32(0), u32(0), u32(o.timescale), u32(0), u16(0x55c4 /* und */), u16(0));
  const hdlr = fullBox('hdlr', 0, 0, u32(0), Buffer.from('vide'), zeros(12), Buffer.from('VideoHandler\0'));
  const vmhd = fullBox('vmhd', 0, 1, zeros(8));
  const dinf = box('dinf', fullBox('dref', 0, 0, u32(1), fullBox('url ', 0, 1)));
  const stbl = box(
    'stbl',
    fullBox('stsd', 0, 0, u32(1), avc1(main, o.sps, o.pps)),
    fullBox('stts', 0, 0, u32(0)),
    fullBox('stsc', 0, 0, u32(0)),
    fullBox('stsz', 0, 0, u32(0), u32(0)),
    fullBox('stco', 0, 0, u32(0)),
  );
  const trak = box('trak', tkhd, box('mdia', mdhd, hdlr, box('minf', vmhd, dinf, stbl)));
  const trex = fullBox('trex', 0, 0, u32(1), u32(1), u32(0), u32(0), u32(0));
  const mehd = o.duration !== undefined && o.duration < 2 ** 32 ? [fullBox('mehd', 0, 0, u32(o.duration))] : [];
  return Buffer.concat([ftyp, box('moov', mvhd, trak, box('mvex', ...mehd, trex))]);
}

function avc1(main: Sps, sps: Sps[], pps: Buffer[]): Buffer {
  const highExtras =
    main.profileIdc === 100 || main.profileIdc === 110 || main.profileIdc === 122 || main.profileIdc === 144
      ? [Buffer.from([0xfc | main.chromaFormatIdc, 0xf8 | (main.bitDepthLuma - 8), 0xf8 | (main.bitDepthChroma - 8), 0])]
      : [];
  const avcC = box(
    'avcC',
    Buffer.from([1, main.profileIdc, main.constraintFlags, main.levelIdc, 0xff, 0xe0 | sps.length]),
    ...sps.flatMap((s) => [u16(s.raw.length), s.raw]),
    Buffer.from([pps.length]),
    ...pps.flatMap((p) => [u16(p.length), p]),
    ...highExtras,
  );
  const compressor = Buffer.alloc(32);
  return box(
    'avc1',
    zeros(6), u16(1), // reserved, data_reference_index
    zeros(16), // pre_defined, reserved
    u16(main.width), u16(main.height),
    u32(0x00480000), u32(0x00480000), u32(0), u16(1),
    compressor, u16(0x0018), u16(0xffff),
    avcC,
  );
}

/** One fragment: moof (mfhd, traf with tfhd, tfdt and a version 1 trun) then mdat. */
export function fragment(sequence: number, baseDecodeTime: number, samples: Fmp4Sample[]): Buffer[] {
  const n = samples.length;
  const trunSize = 12 + 8 + 16 * n;
  const moofSize = 8 + 16 + 8 + 16 + 20 + trunSize;
  const trunEntries = Buffer.allocUnsafe(16 * n);
  let mdatSize = 8;
  samples.forEach((s, i) => {
    trunEntries.writeUInt32BE(s.duration, 16 * i);
    trunEntries.writeUInt32BE(s.size, 16 * i + 4);
    trunEntries.writeUInt32BE(s.sync ? 0x02000000 : 0x01010000, 16 * i + 8);
    trunEntries.writeInt32BE(s.compositionOffset, 16 * i + 12);
    mdatSize += s.size;
  });
  const base = Buffer.allocUnsafe(8);
  base.writeBigUInt64BE(BigInt(baseDecodeTime));
  const moof = box(
    'moof',
    fullBox('mfhd', 0, 0, u32(sequence)),
    box(
      'traf',
      fullBox('tfhd', 0, 0x020000, u32(1)),
      fullBox('tfdt', 1, 0, base),
      fullBox('trun', 1, 0x000f01, u32(n), u32(moofSize + 8), trunEntries),
    ),
  );
  if (moof.length !== moofSize) throw new Error('moof size miscomputed');
  const mdatHeader = Buffer.concat([u32(mdatSize), Buffer.from('mdat')]);
  return [moof, mdatHeader, ...samples.flatMap((s) => s.data)];
}

function box(type: string, ...payload: Buffer[]): Buffer {
  const size = 8 + payload.reduce((a, b) => a + b.length, 0);
  return Buffer.concat([u32(size), Buffer.from(type, 'latin1'), ...payload]);
}

function fullBox(type: string, version: number, flags: number, ...payload: Buffer[]): Buffer {
  return box(type, Buffer.from([version, (flags >> 16) & 0xff, (flags >> 8) & 0xff, flags & 0xff]), ...payload);
}

function u32(v: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}

function u16(v: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16BE(v & 0xffff);
  return b;
}

function zeros(n: number): Buffer {
  return Buffer.alloc(n);
}

function matrix(): Buffer {
  return Buffer.concat([0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000].map(u32));
}

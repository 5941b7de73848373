import { describe, expect, it } from 'vitest';
import { DicomFormatError, Part10Walker } from './dicom-header.js';

/** A tiny Part 10 writer: enough to build each shape the walker must follow (and break it). */
type Enc = 'explicit-le' | 'explicit-be' | 'implicit-le';
const TS: Record<Enc, string> = { 'explicit-le': '1.2.840.10008.1.2.1', 'explicit-be': '1.2.840.10008.1.2.2', 'implicit-le': '1.2.840.10008.1.2' };
const LONG = new Set(['OB', 'OW', 'SQ', 'UN', 'UT']);
const UNDEF = 0xffffffff;

function el(enc: Enc, tag: number, vr: string, value: Buffer | number /* length only, for undefined */): Buffer {
  const le = enc !== 'explicit-be';
  const len = typeof value === 'number' ? value : value.length;
  const body = typeof value === 'number' ? Buffer.alloc(0) : value;
  const u16 = (n: number) => {
    const b = Buffer.alloc(2);
    if (le) b.writeUInt16LE(n);
    else b.writeUInt16BE(n);
    return b;
  };
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    if (le) b.writeUInt32LE(n >>> 0);
    else b.writeUInt32BE(n >>> 0);
    return b;
  };
  const t = Buffer.concat([u16(tag >>> 16), u16(tag & 0xffff)]);
  if (enc === 'implicit-le') return Buffer.concat([t, u32(len), body]);
  if (LONG.has(vr)) return Buffer.concat([t, Buffer.from(vr), Buffer.alloc(2), u32(len), body]);
  return Buffer.concat([t, Buffer.from(vr), u16(len), body]);
}
const item = (enc: Enc, tag: number, len: number, body: Buffer = Buffer.alloc(0)) => {
  const b = Buffer.alloc(8);
  if (enc === 'explicit-be') {
    b.writeUInt16BE(0xfffe, 0);
    b.writeUInt16BE(tag, 2);
    b.writeUInt32BE(len >>> 0, 4);
  } else {
    b.writeUInt16LE(0xfffe, 0);
    b.writeUInt16LE(tag, 2);
    b.writeUInt32LE(len >>> 0, 4);
  }
  return Buffer.concat([b, body]);
};
const ui = (s: string) => Buffer.from(s.length % 2 ? `${s}\0` : s, 'latin1');

const UIDS = { sopClass: '1.2.840.10008.5.1.4.1.1.7', sop: '2.25.1234', study: '2.25.42', series: '2.25.43' };

function part10(enc: Enc, dataset: Buffer[], opts: { ts?: string; meta?: Buffer[] } = {}): Buffer {
  const meta = opts.meta ?? [
    el('explicit-le', 0x00020001, 'OB', Buffer.from([0, 1])),
    el('explicit-le', 0x00020002, 'UI', ui(UIDS.sopClass)),
    el('explicit-le', 0x00020003, 'UI', ui(UIDS.sop)),
    el('explicit-le', 0x00020010, 'UI', ui(opts.ts ?? TS[enc])),
  ];
  const metaBody = Buffer.concat(meta);
  const gl = Buffer.alloc(4);
  gl.writeUInt32LE(metaBody.length);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), el('explicit-le', 0x00020000, 'UL', gl), metaBody, ...dataset]);
}

function identity(enc: Enc): Buffer[] {
  return [
    el(enc, 0x00080016, 'UI', ui(UIDS.sopClass)),
    el(enc, 0x00080018, 'UI', ui(UIDS.sop)),
    el(enc, 0x00100010, 'PN', Buffer.from('Doe^Jane')),
    el(enc, 0x0020000d, 'UI', ui(UIDS.study)),
    el(enc, 0x0020000e, 'UI', ui(UIDS.series)),
  ];
}

function walk(buf: Buffer<ArrayBufferLike>, chunkSize = buf.length): Part10Walker {
  const w = new Part10Walker();
  for (let i = 0; i < buf.length; i += chunkSize) w.feed(buf.subarray(i, i + chunkSize));
  w.end();
  return w;
}

function failure(fn: () => unknown): DicomFormatError {
  try {
    fn();
  } catch (err) {
    if (err instanceof DicomFormatError) return err;
    throw err;
  }
  throw new Error('expected a DicomFormatError');
}

describe('Part10Walker', () => {
  for (const enc of ['explicit-le', 'explicit-be', 'implicit-le'] as const) {
    it(`reads the identity of a ${enc} object, whatever the chunking`, () => {
      const pixels = el(enc, 0x7fe00010, 'OW', Buffer.alloc(4096, 7));
      const file = part10(enc, [...identity(enc), el(enc, 0x00280010, 'US', Buffer.from([0, 1])), pixels]);
      for (const size of [1, 3, 7, 13, 128, 4096, file.length]) {
        const w = walk(file, size);
        expect(w.header).toEqual({
          transferSyntaxUid: TS[enc],
          mediaStorageSopClassUid: UIDS.sopClass,
          mediaStorageSopInstanceUid: UIDS.sop,
          sopClassUid: UIDS.sopClass,
          sopInstanceUid: UIDS.sop,
          studyInstanceUid: UIDS.study,
          seriesInstanceUid: UIDS.series,
        });
        expect(w.offset).toBe(file.length);
      }
    });
  }

  it('completes the header at the first top-level tag after SeriesInstanceUID', () => {
    const file = part10('explicit-le', [...identity('explicit-le'), el('explicit-le', 0x7fe00010, 'OW', Buffer.alloc(1000))]);
    const w = new Part10Walker();
    const cut = file.length - 1000 - 12;
    w.feed(file.subarray(0, cut));
    expect(w.headerComplete).toBe(false);
    w.feed(file.subarray(cut, cut + 12));
    expect(w.headerComplete).toBe(true);
    expect(w.header.studyInstanceUid).toBe(UIDS.study);
  });

  it('walks undefined-length sequences, nested items and encapsulated pixel data', () => {
    const enc = 'explicit-le';
    const nested = Buffer.concat([
      item(enc, 0xe000, UNDEF, Buffer.concat([el(enc, 0x00081150, 'UI', ui('1.2.3')), el(enc, 0x00081155, 'UI', ui('2.25.1'))])),
      item(enc, 0xe00d, 0),
      item(enc, 0xe000, 10, Buffer.alloc(10)),
      item(enc, 0xe0dd, 0),
    ]);
    const fragments = Buffer.concat([item(enc, 0xe000, 0), item(enc, 0xe000, 6, Buffer.alloc(6, 0xff)), item(enc, 0xe0dd, 0)]);
    // A SOP Instance UID inside a sequence must not be taken for the object's own.
    const file = part10(enc, [
      el(enc, 0x00080016, 'UI', ui(UIDS.sopClass)),
      el(enc, 0x00080018, 'UI', ui(UIDS.sop)),
      el(enc, 0x00081140, 'SQ', UNDEF),
      nested,
      ...identity(enc).slice(3),
      el(enc, 0x7fe00010, 'OB', UNDEF),
      fragments,
    ]);
    const w = walk(file, 5);
    expect(w.header.sopInstanceUid).toBe(UIDS.sop);
    expect(w.header.seriesInstanceUid).toBe(UIDS.series);
  });

  it('treats an undefined-length UN as an implicit VR little endian sequence', () => {
    const enc = 'explicit-le';
    const inner = Buffer.concat([item('implicit-le', 0xe000, UNDEF, el('implicit-le', 0x00080100, 'SH', Buffer.from('AB'))), item('implicit-le', 0xe00d, 0), item('implicit-le', 0xe0dd, 0)]);
    const file = part10(enc, [...identity(enc), el(enc, 0x00410010, 'UN', UNDEF), inner]);
    expect(walk(file, 3).header.studyInstanceUid).toBe(UIDS.study);
  });

  it('refuses what is not Part 10', () => {
    expect(failure(() => walk(Buffer.from('hello world'))).code).toBe('not_dicom');
    expect(failure(() => walk(Buffer.alloc(4096, 0x41))).code).toBe('not_dicom');
    const noTs = part10('explicit-le', identity('explicit-le'), { meta: [el('explicit-le', 0x00020003, 'UI', ui(UIDS.sop))] });
    expect(failure(() => walk(noTs)).message).toMatch(/Transfer Syntax/);
    const badVr = part10('explicit-le', [el('explicit-le', 0x00080016, 'UI', ui(UIDS.sopClass)), Buffer.from([0x08, 0, 0x18, 0, 0x31, 0x32, 2, 0, 0x31, 0x32])]);
    expect(failure(() => walk(badVr)).message).toMatch(/no valid VR/);
    const strayDelimiter = part10('explicit-le', [...identity('explicit-le'), item('explicit-le', 0xe0dd, 0)]);
    expect(failure(() => walk(strayDelimiter)).code).toBe('not_dicom');
  });

  it('refuses deflated objects: their header cannot be read without inflating', () => {
    const file = part10('explicit-le', identity('explicit-le'), { ts: '1.2.840.10008.1.2.1.99' });
    expect(failure(() => walk(file)).code).toBe('unsupported_transfer_syntax');
  });

  it('says truncated when the body stops inside an element, a sequence or the meta', () => {
    const file = part10('explicit-le', [...identity('explicit-le'), el('explicit-le', 0x7fe00010, 'OW', Buffer.alloc(2000))]);
    for (const cut of [140, 200, file.length - 1, file.length - 1999, file.length - 2004]) {
      expect(failure(() => walk(file.subarray(0, cut))).code, `cut at ${cut}`).toBe('truncated');
    }
    const openSequence = part10('explicit-le', [...identity('explicit-le'), el('explicit-le', 0x00400275, 'SQ', UNDEF), item('explicit-le', 0xe000, UNDEF)]);
    expect(failure(() => walk(openSequence)).code).toBe('truncated');
  });

  it('never allocates by a declared length: a hostile 4 GiB element is skipped, then reported truncated', () => {
    const file = part10('explicit-le', [...identity('explicit-le'), el('explicit-le', 0x7fe00010, 'OW', 0xfffffff0)]);
    const w = new Part10Walker();
    w.feed(file);
    w.feed(Buffer.alloc(1 << 20));
    expect(w.headerComplete).toBe(true);
    expect(failure(() => w.end()).code).toBe('truncated');
  });

  it('keeps over-long UID values as invalid instead of copying them', () => {
    const file = part10('explicit-le', [el('explicit-le', 0x00080018, 'UI', Buffer.alloc(2000, 0x31)), ...identity('explicit-le').slice(2)]);
    expect(walk(file).header.sopInstanceUid).toBe('(too long)');
  });

  it('refuses sequences nested beyond a sane depth', () => {
    const enc = 'explicit-le';
    const deep: Buffer[] = [];
    for (let i = 0; i < 40; i++) deep.push(el(enc, 0x00400275, 'SQ', UNDEF), item(enc, 0xe000, UNDEF));
    expect(failure(() => walk(part10(enc, [...identity(enc), ...deep]))).message).toMatch(/nested too deeply/);
  });
});

import { Readable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { InstanceLocator, InstanceRef, PacsClient } from '../pacs/pacs-client.js';
import { PacsError } from '../pacs/pacs-client.js';
import { ByteReader, TruncatedError } from './byte-reader.js';
import { Tags, decimal, nextFragment, text, walkTo } from './dicom-walker.js';
import { MediaFinder } from './media-finder.js';
import { MediaSource } from './media-source.js';

// Part 10 builders: explicit or implicit VR little endian, with undefined-length sequences.
const EXPLICIT = '1.2.840.10008.1.2.1';
const IMPLICIT = '1.2.840.10008.1.2';
const JPEG = '1.2.840.10008.1.2.4.50';
const PDF_CLASS = '1.2.840.10008.5.1.4.1.1.104.1';
const SC_CLASS = '1.2.840.10008.5.1.4.1.1.7';
const LONG = new Set(['OB', 'OW', 'SQ', 'UN', 'UT']);

function el(tag: number, vr: string, value: string | Buffer, explicit = true): Buffer {
  let v = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  if (v.length % 2) v = Buffer.concat([v, Buffer.from([vr === 'UI' || vr === 'OB' ? 0 : 0x20])]);
  const h = Buffer.alloc(explicit ? (LONG.has(vr) ? 12 : 8) : 8);
  h.writeUInt16LE(tag >>> 16, 0);
  h.writeUInt16LE(tag & 0xffff, 2);
  if (!explicit) h.writeUInt32LE(v.length, 4);
  else {
    h.write(vr, 4, 'latin1');
    if (LONG.has(vr)) h.writeUInt32LE(v.length, 8);
    else h.writeUInt16LE(v.length, 6);
  }
  return Buffer.concat([h, v]);
}

const ITEM_START = Buffer.from([0xfe, 0xff, 0x00, 0xe0, 0xff, 0xff, 0xff, 0xff]);
const ITEM_END = Buffer.from([0xfe, 0xff, 0x0d, 0xe0, 0, 0, 0, 0]);
const SEQ_END = Buffer.from([0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]);

/** (0040,0275) holding a nested undefined-length sequence, everything of undefined length. */
function nestedSequence(explicit: boolean): Buffer {
  const sq = (tag: number) => {
    const h = Buffer.alloc(explicit ? 12 : 8);
    h.writeUInt16LE(tag >>> 16, 0);
    h.writeUInt16LE(tag & 0xffff, 2);
    if (explicit) {
      h.write('SQ', 4, 'latin1');
      h.writeUInt32LE(0xffffffff, 8);
    } else h.writeUInt32LE(0xffffffff, 4);
    return h;
  };
  // A decoy: the same tags as the target inside the sequence must not stop the walk.
  const inner = Buffer.concat([sq(0x00400008), ITEM_START, el(0x00420011, 'OB', Buffer.from('decoy!'), explicit), ITEM_END, SEQ_END]);
  return Buffer.concat([sq(0x00400275), ITEM_START, el(0x00400007, 'LO', 'Step', explicit), inner, ITEM_END, SEQ_END]);
}

function part10(ts: string, dataset: Buffer[]): Buffer {
  const meta = Buffer.concat([el(0x00020001, 'OB', Buffer.from([0, 1])), el(0x00020010, 'UI', ts)]);
  const gl = Buffer.alloc(4);
  gl.writeUInt32LE(meta.length);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), el(0x00020000, 'UL', gl), meta, ...dataset]);
}

const pdfBytes = Buffer.from('%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n'); // 45 bytes: odd, padded in DICOM

function pdfObject(ts = EXPLICIT, pdf = pdfBytes): Buffer {
  const x = ts !== IMPLICIT;
  return part10(ts, [
    el(0x00080005, 'CS', 'ISO_IR 192', x),
    el(0x00080016, 'UI', PDF_CLASS, x),
    el(0x0008103e, 'LO', 'Überweisung', x),
    nestedSequence(x),
    el(0x00420010, 'ST', 'Referral', x),
    el(0x00420011, 'OB', pdf, x),
    el(0x00420012, 'LO', 'application/pdf', x),
  ]);
}

// 31 bytes: odd, so its last fragment carries a pad byte after EOI.
const jpegBytes = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 5, 1, 2, 3, 0xff, 0xc0, 0, 11, 8, 0, 8, 0, 8, 1, 1, 0x11, 0]), Buffer.from([0xff, 0xda, 0, 2, 9, 9, 9, 0xff, 0xd9])]);

function encapsulated(fragments: Buffer[], bot = Buffer.alloc(0)): Buffer {
  const item = (b: Buffer) => {
    const v = b.length % 2 ? Buffer.concat([b, Buffer.alloc(1)]) : b;
    const h = Buffer.from([0xfe, 0xff, 0x00, 0xe0, 0, 0, 0, 0]);
    h.writeUInt32LE(v.length, 4);
    return Buffer.concat([h, v]);
  };
  return Buffer.concat([Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x42, 0, 0, 0xff, 0xff, 0xff, 0xff]), item(bot), ...fragments.map(item), SEQ_END]);
}

function jpegObject(fragments: Buffer[], frames?: string): Buffer {
  return part10(JPEG, [el(0x00080016, 'UI', SC_CLASS), el(0x0008103e, 'LO', 'Wound/photo'), ...(frames ? [el(0x00280008, 'IS', frames)] : []), nestedSequence(true), encapsulated(fragments)]);
}

function chunked(buf: Buffer, size: number): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) chunks.push(buf.subarray(i, i + size));
  return Readable.from(chunks);
}

async function collect(r: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of r) out.push(c);
  return Buffer.concat(out);
}

describe('DICOM walker', () => {
  for (const [name, ts] of [['explicit', EXPLICIT], ['implicit', IMPLICIT]] as const) {
    for (const size of [1, 7, 4096]) {
      it(`walks ${name} VR past nested undefined-length sequences to the document (chunks of ${size})`, async () => {
        const reader = new ByteReader(chunked(pdfObject(ts), size));
        const w = await walkTo(reader, new Set([Tags.EncapsulatedDocument]), new Set([Tags.SpecificCharacterSet, Tags.SeriesDescription, Tags.DocumentTitle, Tags.SOPClassUID]));
        expect(w.transferSyntaxUid).toBe(ts);
        expect(w.target).toMatchObject({ tag: Tags.EncapsulatedDocument, length: pdfBytes.length + 1 });
        expect(text(w.values, Tags.SeriesDescription)).toBe('Überweisung');
        expect(text(w.values, Tags.DocumentTitle)).toBe('Referral');
        expect(text(w.values, Tags.SOPClassUID)).toBe(PDF_CLASS);
        expect((await collect(reader.take(w.target!.length!))).subarray(0, pdfBytes.length).equals(pdfBytes)).toBe(true);
      });
    }
  }

  it('reads encapsulated pixel data item by item', async () => {
    const reader = new ByteReader(chunked(jpegObject([jpegBytes.subarray(0, 10), jpegBytes.subarray(10)], '1'), 5));
    const w = await walkTo(reader, new Set([Tags.PixelData]), new Set([Tags.NumberOfFrames]));
    expect(w.target).toMatchObject({ tag: Tags.PixelData, length: undefined, vr: 'OB' });
    expect(decimal(w.values, Tags.NumberOfFrames)).toBe(1);
    expect(await nextFragment(reader, true)).toBe(0);
    expect(await nextFragment(reader, true)).toBe(10);
    await reader.skip(10);
    const rest = jpegBytes.length - 10;
    expect(await nextFragment(reader, true)).toBe(rest + (rest % 2));
    await reader.skip(rest + (rest % 2));
    expect(await nextFragment(reader, true)).toBeUndefined();
  });

  it('fails cleanly on a truncated object and on a non-DICOM one, never allocating by a declared length', async () => {
    const whole = pdfObject();
    await expect(walkTo(new ByteReader(chunked(whole.subarray(0, 300), 64)), new Set([Tags.EncapsulatedDocument]))).rejects.toBeInstanceOf(TruncatedError);
    await expect(walkTo(new ByteReader(chunked(Buffer.alloc(400, 1), 64)), new Set([Tags.EncapsulatedDocument]))).rejects.toThrow(/DICM/);
    // A 4 GB declared length is skipped by counting, then the stream simply ends.
    const huge = part10(EXPLICIT, [Buffer.from([0x09, 0x00, 0x10, 0x00, 0x4f, 0x42, 0, 0, 0xfe, 0xff, 0xff, 0xff])]);
    await expect(walkTo(new ByteReader(chunked(huge, 64)), new Set([Tags.PixelData]), new Set([0x00090010]))).rejects.toBeInstanceOf(TruncatedError);
  });
});

/** A PACS holding a few Part 10 buffers, counting what is opened. */
class FakePacs implements PacsClient {
  readonly flavor = 'dicomweb' as const;
  opened: string[] = [];
  constructor(private readonly objects: Map<string, Buffer>) {}
  async ping(): Promise<void> {}
  async findStudy(): Promise<undefined> {
    return undefined;
  }
  async listInstances(): Promise<InstanceRef[]> {
    return [];
  }
  async openInstance(ref: InstanceLocator) {
    this.opened.push(ref.sopUid);
    const b = this.objects.get(ref.sopUid);
    if (!b) throw new PacsError('not_found', 'absent', 404);
    return { body: chunked(b, 13), length: b.length };
  }
}

const log = pino({ level: 'silent' });
const loc = (sopUid: string): InstanceRef => ({ studyUid: '1.2.3', seriesUid: '1.2.3.4', sopUid });

describe('media source', () => {
  it('serves the PDF without its pad byte, measuring it once and then streaming at once', async () => {
    const pacs = new FakePacs(new Map([['1', pdfObject()]]));
    const source = new MediaSource(pacs, log);
    const first = await source.open(loc('1'), 'pdf');
    expect(first).toMatchObject({ length: pdfBytes.length, contentType: 'application/pdf', fileName: 'Überweisung.pdf', ranges: true });
    expect((await collect(first.body)).equals(pdfBytes)).toBe(true);
    expect(pacs.opened).toEqual(['1', '1']); // measured, then served
    const again = await source.open(loc('1'), 'pdf');
    expect((await collect(again.body)).equals(pdfBytes)).toBe(true);
    expect(pacs.opened).toEqual(['1', '1', '1']);
  });

  it('serves a JPEG split over fragments, pad removed; refuses a multi-frame object and a 12-bit codestream', async () => {
    const pacs = new FakePacs(
      new Map([
        ['j', jpegObject([jpegBytes.subarray(0, 10), jpegBytes.subarray(10, 20), jpegBytes.subarray(20)])],
        ['multi', jpegObject([jpegBytes], '4')],
        ['12bit', jpegObject([Buffer.from(jpegBytes).fill(12, 13, 14)])], // SOF0 precision 12
      ]),
    );
    const source = new MediaSource(pacs, log);
    const served = await source.open(loc('j'), 'jpeg');
    expect(served.length).toBe(jpegBytes.length);
    expect(served.fileName).toBe('Wound photo.jpg');
    expect((await collect(served.body)).equals(jpegBytes)).toBe(true);
    await expect(source.open(loc('multi'), 'jpeg')).rejects.toThrow(/not a single JPEG picture/);
    await expect(source.open(loc('12bit'), 'jpeg')).rejects.toThrow(/12-bit/);
    await expect(source.open(loc('j'), 'pdf')).rejects.toThrow(/not a PDF/);
  });
});

describe('media finder', () => {
  it('reads headers only where the listing lacks what is needed, and remembers them', async () => {
    const pacs = new FakePacs(new Map([['pdf', pdfObject()], ['sc', jpegObject([jpegBytes])]]));
    const finder = new MediaFinder(pacs, log);
    const refs: InstanceRef[] = [
      { ...loc('ct'), sopClassUid: '1.2.840.10008.5.1.4.1.1.2' }, // CT: never opened
      { ...loc('pdf'), sopClassUid: PDF_CLASS }, // no series description: its DocumentTitle names it
      { ...loc('sc'), sopClassUid: SC_CLASS }, // no transfer syntax in the listing
      { ...loc('mpeg2'), sopClassUid: '1.2.840.10008.5.1.4.1.1.77.1.4.1', transferSyntaxUid: '1.2.840.10008.1.2.4.100' },
      { ...loc('named'), sopClassUid: PDF_CLASS, seriesDescription: 'Überweisung' },
    ];
    const found = await finder.find(refs);
    expect(found.media.map((m) => [m.ref.sopUid, m.kind, m.fileName])).toEqual([
      ['pdf', 'pdf', 'Überweisung.pdf'],
      ['sc', 'jpeg', 'Wound photo.jpg'],
      ['named', 'pdf', 'Überweisung (2).pdf'],
    ]);
    expect(found.excluded.map((e) => e.ref.sopUid)).toEqual(['mpeg2']);
    expect(pacs.opened.sort()).toEqual(['pdf', 'sc']);
    await finder.find(refs);
    expect(pacs.opened).toHaveLength(2);
  });

  it('probes a large series and looks further only when a probe is media; asks the archive before reading headers', async () => {
    const plain = part10(EXPLICIT, [el(0x00080016, 'UI', SC_CLASS), el(0x7fe00010, 'OB', Buffer.alloc(16))]);
    const objects = new Map<string, Buffer>();
    const refs: InstanceRef[] = [];
    for (let i = 0; i < 500; i++) {
      objects.set(`plain${i}`, plain);
      refs.push({ ...loc(`plain${i}`), seriesUid: 'big-plain', modality: 'OT' });
      objects.set(`photo${i}`, jpegObject([jpegBytes]));
      refs.push({ ...loc(`photo${i}`), seriesUid: 'big-photos', modality: 'XC' });
    }
    refs.push({ ...loc('ct'), seriesUid: 'ct', modality: 'CT' }); // never looked at
    const pacs = new FakePacs(objects);
    const described: string[] = [];
    const describing = Object.assign(pacs, {
      describeInstance: async (ref: InstanceLocator) => {
        described.push(ref.sopUid);
        return ref.sopUid.startsWith('photo') ? { sopClassUid: SC_CLASS, transferSyntaxUid: JPEG } : { sopClassUid: SC_CLASS, transferSyntaxUid: EXPLICIT };
      },
    });
    const found = await new MediaFinder(describing, log, { maxLookups: 10_000 }).find(refs);
    expect(found.media).toHaveLength(500);
    expect(found.lookups).toBe(503); // 3 probes of the plain series, all 500 photos
    expect(described).not.toContain('ct');
    expect(pacs.opened).toEqual([]); // the archive's description sufficed: no header read
    const finder = new MediaFinder(describing, log, { maxLookups: 10_000 });
    await finder.find(refs);
    described.length = 0;
    expect((await finder.find(refs)).media).toHaveLength(500);
    expect(described).toEqual([]); // all remembered: the plain series is not probed again
    await finder.find([...refs, { ...loc('plain-new'), seriesUid: 'big-plain', modality: 'OT' }]);
    expect(described.length).toBeGreaterThan(0); // it changed: probed again

    const capped = await new MediaFinder(new FakePacs(objects), log, { maxLookups: 100 }).find(refs);
    expect(capped.lookups).toBe(100);
    expect(capped.unresolved).toBe(403);
  });
});

import { describe, expect, it } from 'vitest';
import { JpegInspector, Mp4Inspector, PdfInspector, type Inspector } from './inspectors.js';

function run(inspector: Inspector, bytes: Buffer, size = 3): number {
  for (let i = 0; i < bytes.length; i += size) inspector.feed(bytes.subarray(i, i + size));
  return inspector.finish();
}

describe('stored media inspectors', () => {
  it('drops the pad after a PDF %%EOF, and only there', () => {
    const pdf = Buffer.from('%PDF-1.7\n...\n%%EOF\n');
    expect(run(new PdfInspector(), Buffer.concat([pdf, Buffer.from([0])]))).toBe(pdf.length);
    expect(run(new PdfInspector(), pdf)).toBe(pdf.length);
    expect(() => run(new PdfInspector(), Buffer.from('GIF89a...'))).toThrow(/not a PDF/);
  });

  it('drops the pad after a JPEG EOI and refuses processes browsers do not decode', () => {
    const jpeg = (sof: number, precision: number) => Buffer.from([0xff, 0xd8, 0xff, 0xfe, 0, 3, 0x41, 0xff, sof, 0, 11, precision, 0, 1, 0, 1, 1, 1, 0x11, 0, 0xff, 0xda, 0, 2, 7, 0xff, 0xd9]);
    expect(run(new JpegInspector(), Buffer.concat([jpeg(0xc0, 8), Buffer.from([0])]))).toBe(27);
    expect(run(new JpegInspector(), jpeg(0xc2, 8), 1)).toBe(27);
    expect(() => run(new JpegInspector(), jpeg(0xc3, 8))).toThrow(/SOF3/); // lossless
    expect(() => run(new JpegInspector(), jpeg(0xc1, 12))).toThrow(/12-bit/);
    expect(() => run(new JpegInspector(), Buffer.from([0x89, 0x50]))).toThrow(/not a JPEG/);
  });

  it('ends an MP4 at its last whole top-level box', () => {
    const box = (type: string, n: number) => Buffer.concat([Buffer.from([0, 0, 0, 8 + n]), Buffer.from(type), Buffer.alloc(n, 1)]);
    const mp4 = Buffer.concat([box('ftyp', 8), box('moov', 20), box('mdat', 33)]);
    expect(run(new Mp4Inspector(), Buffer.concat([mp4, Buffer.from([0])]), 5)).toBe(mp4.length);
    expect(() => run(new Mp4Inspector(), box('moov', 4))).toThrow(/not an MP4/);
    expect(() => run(new Mp4Inspector(), mp4.subarray(0, mp4.length - 3))).toThrow(/truncated/);
  });
});

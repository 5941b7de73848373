import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import dcmjs from 'dcmjs';
import { afterAll, describe, expect, it } from 'vitest';
import { minimalPdf } from '../../test/support/pdf.js';
import { isDicomUid } from '../webhooks/event-schemas.js';
import { ENCAPSULATED_PDF_SOP_CLASS, encapsulatedPdf, encapsulatedPdfStream, reportSeriesInstanceUid, reportSopInstanceUid } from './encapsulated-pdf.js';

const run = promisify(execFile);
const dir = mkdtempSync(path.join(tmpdir(), 'avara-encpdf-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const REPORT = 'rep_0123456789abcdef0123456789abcdef';
const STUDY_UID = '1.2.826.0.1.3680043.8.498.1';
const study = {
  '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Yamada^Tarou', Ideographic: '山田^太郎' }] },
  '00100020': { vr: 'LO', Value: ['PID-42'] },
  '00100030': { vr: 'DA', Value: ['19700101'] },
  '00080020': { vr: 'DA', Value: ['20240115'] },
  '00080050': { vr: 'SH', Value: ['ACC-7'] },
  '00081030': { vr: 'LO', Value: ['Thorax Größe'] },
  '00201206': { vr: 'IS', Value: [3] }, // study-level counts are not copied
};

async function build(pdf: Buffer) {
  const parts = await encapsulatedPdf({ reportId: REPORT, studyInstanceUid: STUDY_UID, study, pdfLength: pdf.length, createdAt: new Date(2024, 0, 15, 10, 30, 0) });
  const pdfPath = path.join(dir, `${pdf.length}.pdf`);
  writeFileSync(pdfPath, pdf);
  const chunks: Buffer[] = [];
  for await (const c of encapsulatedPdfStream(parts, pdfPath)) chunks.push(c as Buffer);
  return { parts, file: Buffer.concat(chunks) };
}

function parse(file: Buffer) {
  const ab = file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength) as ArrayBuffer;
  return dcmjs.data.DicomMessage.readFile(ab);
}

describe('report UIDs', () => {
  it('are derived from the reportId: the same on every filing, different per report, valid DICOM UIDs', () => {
    const a = reportSopInstanceUid(REPORT);
    expect(reportSopInstanceUid(REPORT)).toBe(a);
    expect(reportSopInstanceUid('rep_ffffffffffffffffffffffffffffffff')).not.toBe(a);
    expect(a).toMatch(/^2\.25\.[1-9]\d*$/);
    expect(a.length).toBeLessThanOrEqual(64);
    expect(isDicomUid(a)).toBe(true);
    const s = reportSeriesInstanceUid(STUDY_UID, REPORT);
    expect(reportSeriesInstanceUid(STUDY_UID, REPORT)).toBe(s);
    expect(reportSeriesInstanceUid('1.2.3', REPORT)).not.toBe(s);
    expect(s).not.toBe(a);
    expect(isDicomUid(s)).toBe(true);
  });
});

describe('encapsulatedPdf', () => {
  it.each([false, true])('writes a Part 10 Encapsulated PDF that dcmjs reads back (odd PDF length: %s)', async (odd) => {
    const pdf = minimalPdf({ odd });
    const { parts, file } = await build(pdf);
    expect(file.length).toBe(parts.length);
    expect(file.subarray(128, 132).toString()).toBe('DICM');
    const { meta, dict } = parse(file);
    const v = (tag: string) => dict[tag]?.Value?.[0];
    expect(meta['00020002']?.Value?.[0]).toBe(ENCAPSULATED_PDF_SOP_CLASS);
    expect(meta['00020003']?.Value?.[0]).toBe(reportSopInstanceUid(REPORT));
    expect(meta['00020010']?.Value?.[0]).toBe('1.2.840.10008.1.2.1');
    expect(v('00080016')).toBe(ENCAPSULATED_PDF_SOP_CLASS);
    expect(v('00080018')).toBe(reportSopInstanceUid(REPORT));
    expect(v('0020000D')).toBe(STUDY_UID);
    expect(v('0020000E')).toBe(reportSeriesInstanceUid(STUDY_UID, REPORT));
    expect(v('00080060')).toBe('DOC');
    expect(v('0008103E')).toMatch(/Avara/);
    expect(v('00420010')).toMatch(/report/i);
    expect(v('00420012')).toBe('application/pdf');
    expect(v('00420015')).toBe(pdf.length);
    expect(v('00080023')).toBe('20240115');
    // Copied from the PACS's record, text included in full (UTF-8, ISO_IR 192).
    expect(v('00100010')).toMatchObject({ Alphabetic: 'Yamada^Tarou', Ideographic: '山田^太郎' });
    expect(v('00100020')).toBe('PID-42');
    expect(v('00080050')).toBe('ACC-7');
    expect(v('00081030')).toBe('Thorax Größe');
    expect(dict['00100040']).toBeDefined(); // type 2: present though the PACS had no value
    expect(dict['00201206']).toBeUndefined();
    const doc = Buffer.from(dict['00420011']!.Value![0] as ArrayBuffer);
    expect(doc.length).toBe(pdf.length + (odd ? 1 : 0));
    expect(doc.subarray(0, pdf.length).equals(pdf)).toBe(true);
    if (odd) expect(doc[pdf.length]).toBe(0);
  });

  it('is read by dcmtk without complaint', async () => {
    const { file } = await build(minimalPdf({ odd: true }));
    const p = path.join(dir, 'report.dcm');
    writeFileSync(p, file);
    const { stdout, stderr } = await run('dcmdump', ['+U8', '-q', p]);
    expect(stderr).toBe('');
    expect(stdout).toMatch(/\(0008,0016\) UI =EncapsulatedPDFStorage/);
    expect(stdout).toMatch(/\(0042,0012\) LO \[application\/pdf\]/);
    expect(stdout).toMatch(/\(0010,0010\) PN \[Yamada\^Tarou=山田\^太郎\]/);
  });

  it('is byte-identical when built twice for the same report', async () => {
    const pdf = minimalPdf();
    const [a, b] = [await build(pdf), await build(pdf)];
    expect(a.file.equals(b.file)).toBe(true);
  });
});

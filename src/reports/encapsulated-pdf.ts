import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import type { StudyRecord } from '../pacs/pacs-client.js';

/**
 * A report PDF as a DICOM Encapsulated PDF (PS3.3 A.45.1, SOP Class 1.2.840.10008.5.1.4.1.1.104.1), filed
 * into the study it reports on: patient and study attributes copied from the PACS's record of the study,
 * its own series (modality DOC, "Avara report"), UIDs derived from the reportId so that filing the same
 * report twice stores the same object.
 *
 * The PDF is never held in memory: dcmjs writes everything up to the Encapsulated Document element, that
 * element's header and the attributes after it are encoded here, and the PDF bytes are streamed between
 * them from the file. Explicit VR Little Endian throughout.
 */

export const ENCAPSULATED_PDF_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.104.1';
const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';
export const REPORT_SERIES_DESCRIPTION = 'Avara report';
export const REPORT_DOCUMENT_TITLE = 'Radiology report (Avara)';
const REPORT_SERIES_NUMBER = '9901';

/**
 * `2.25.` + a name-based UUID (RFC 9562 version 8, from SHA-256) as a decimal integer: at most 44
 * characters, the same for the same name on every gateway.
 */
export function deriveUid(...parts: string[]): string {
  const h = createHash('sha256').update('avara-gateway\0').update(parts.join('\0')).digest();
  const b = h.subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x80;
  b[8] = (b[8]! & 0x3f) | 0x80;
  return `2.25.${BigInt(`0x${b.toString('hex')}`).toString(10)}`;
}

export const reportSopInstanceUid = (reportId: string): string => deriveUid('report-sop-instance', reportId);
export const reportSeriesInstanceUid = (studyInstanceUid: string, reportId: string): string => deriveUid('report-series', studyInstanceUid, reportId);
const IMPLEMENTATION_CLASS_UID = deriveUid('implementation');

type DcmjsElement = { vr: string; Value?: unknown[] };

/** Patient and study attributes copied from the PACS (keyword, VR, type 2 = present even when empty). */
const COPIED: Array<[tag: string, vr: string, type2: boolean]> = [
  ['00080020', 'DA', true], // StudyDate
  ['00080030', 'TM', true], // StudyTime
  ['00080050', 'SH', true], // AccessionNumber
  ['00080090', 'PN', true], // ReferringPhysicianName
  ['00081030', 'LO', false], // StudyDescription
  ['00100010', 'PN', true], // PatientName
  ['00100020', 'LO', true], // PatientID
  ['00100021', 'LO', false], // IssuerOfPatientID
  ['00100030', 'DA', true], // PatientBirthDate
  ['00100040', 'CS', true], // PatientSex
  ['00200010', 'SH', true], // StudyID
];

export interface EncapsulatedPdfInput {
  reportId: string;
  studyInstanceUid: string;
  /** The study's record in the PACS (PacsClient.findStudy). */
  study: StudyRecord;
  pdfLength: number;
  /** When the report was received: used for the content and creation dates, so the object is the same on every filing. */
  createdAt: Date;
}

export interface EncapsulatedPdf {
  sopInstanceUid: string;
  seriesInstanceUid: string;
  /** Part 10 bytes before the PDF: preamble, meta, attributes, the Encapsulated Document element header. */
  head: Buffer;
  /** Bytes after the PDF: the padding byte when its length is odd, then MIME type and document length. */
  tail: Buffer;
  /** Total Part 10 length: head + PDF + tail. */
  length: number;
}

/** dcmjs is loaded on first use: it adds ~17 MB to the resident memory of a gateway that may never file a report. */
export async function encapsulatedPdf(input: EncapsulatedPdfInput): Promise<EncapsulatedPdf> {
  const { default: dcmjs } = await import('dcmjs');
  const sopInstanceUid = reportSopInstanceUid(input.reportId);
  const seriesInstanceUid = reportSeriesInstanceUid(input.studyInstanceUid, input.reportId);
  const { date, time } = dicomDateTime(input.createdAt);
  const meta: Record<string, DcmjsElement> = {
    '00020001': { vr: 'OB', Value: [new Uint8Array([0, 1]).buffer] },
    '00020002': { vr: 'UI', Value: [ENCAPSULATED_PDF_SOP_CLASS] },
    '00020003': { vr: 'UI', Value: [sopInstanceUid] },
    '00020010': { vr: 'UI', Value: [EXPLICIT_VR_LITTLE_ENDIAN] },
    '00020012': { vr: 'UI', Value: [IMPLEMENTATION_CLASS_UID] },
    '00020013': { vr: 'SH', Value: ['AVARA_GATEWAY'] },
  };
  const dict: Record<string, DcmjsElement> = {
    '00080005': { vr: 'CS', Value: ['ISO_IR 192'] }, // dcmjs writes text as UTF-8
    '00080012': { vr: 'DA', Value: [date] },
    '00080013': { vr: 'TM', Value: [time] },
    '00080016': { vr: 'UI', Value: [ENCAPSULATED_PDF_SOP_CLASS] },
    '00080018': { vr: 'UI', Value: [sopInstanceUid] },
    '00080023': { vr: 'DA', Value: [date] }, // ContentDate
    '0008002A': { vr: 'DT', Value: [`${date}${time}`] }, // AcquisitionDateTime
    '00080033': { vr: 'TM', Value: [time] }, // ContentTime
    '00080060': { vr: 'CS', Value: ['DOC'] },
    '00080064': { vr: 'CS', Value: ['WSD'] }, // ConversionType: workstation
    '00080070': { vr: 'LO', Value: ['Avara'] },
    '0008103E': { vr: 'LO', Value: [REPORT_SERIES_DESCRIPTION] },
    '00081090': { vr: 'LO', Value: ['avara-gateway'] },
    '0020000D': { vr: 'UI', Value: [input.studyInstanceUid] },
    '0020000E': { vr: 'UI', Value: [seriesInstanceUid] },
    '00200011': { vr: 'IS', Value: [REPORT_SERIES_NUMBER] },
    '00200013': { vr: 'IS', Value: ['1'] },
    '00280301': { vr: 'CS', Value: ['YES'] }, // BurnedInAnnotation: a report names the patient
    '0040A043': { vr: 'SQ', Value: [] }, // ConceptNameCodeSequence (type 2)
    '00420010': { vr: 'ST', Value: [REPORT_DOCUMENT_TITLE] },
  };
  const record = upperKeys(input.study);
  for (const [tag, vr, type2] of COPIED) {
    const values = (record[tag]?.Value ?? []).filter((v) => v !== null && v !== undefined).map((v) => (vr === 'PN' && typeof v === 'object' ? v : String(v)));
    if (values.length > 0) dict[tag] = { vr, Value: values };
    else if (type2) dict[tag] = { vr, Value: [] };
  }

  const file = new dcmjs.data.DicomDict(meta);
  file.dict = dict;
  const attributes = Buffer.from(file.write({ allowInvalidVRLength: true }));
  const padded = input.pdfLength % 2 === 1;
  const valueLength = input.pdfLength + (padded ? 1 : 0);
  // (0042,0011) OB, explicit VR: tag, "OB", two reserved bytes, 32-bit length.
  const docHeader = Buffer.alloc(12);
  docHeader.writeUInt16LE(0x0042, 0);
  docHeader.writeUInt16LE(0x0011, 2);
  docHeader.write('OB', 4, 'latin1');
  docHeader.writeUInt32LE(valueLength, 8);
  const head = Buffer.concat([attributes, docHeader]);
  const tail = Buffer.concat([
    padded ? Buffer.from([0]) : Buffer.alloc(0),
    shortElement(0x0042, 0x0012, 'LO', Buffer.from('application/pdf ', 'latin1')), // MIMETypeOfEncapsulatedDocument, padded to even
    shortElement(0x0042, 0x0015, 'UL', uint32(input.pdfLength)), // EncapsulatedDocumentLength: without the padding byte
  ]);
  return { sopInstanceUid, seriesInstanceUid, head, tail, length: head.length + input.pdfLength + tail.length };
}

/** The whole Part 10 object as a stream: head, the PDF read from `pdfPath`, tail. */
export function encapsulatedPdfStream(parts: EncapsulatedPdf, pdfPath: string): Readable {
  async function* body(): AsyncGenerator<Buffer> {
    yield parts.head;
    for await (const chunk of createReadStream(pdfPath)) yield chunk as Buffer;
    yield parts.tail;
  }
  return Readable.from(body(), { objectMode: false });
}

function shortElement(group: number, element: number, vr: string, value: Buffer): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt16LE(group, 0);
  b.writeUInt16LE(element, 2);
  b.write(vr, 4, 'latin1');
  b.writeUInt16LE(value.length, 6);
  return Buffer.concat([b, value]);
}

function uint32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n, 0);
  return b;
}

function upperKeys(record: StudyRecord): StudyRecord {
  const out: StudyRecord = {};
  for (const [k, v] of Object.entries(record)) out[k.toUpperCase()] = v;
  return out;
}

/** Local date and time as DICOM DA (YYYYMMDD) and TM (HHMMSS). */
function dicomDateTime(d: Date): { date: string; time: string } {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return {
    date: `${p(d.getFullYear(), 4)}${p(d.getMonth() + 1)}${p(d.getDate())}`,
    time: `${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`,
  };
}

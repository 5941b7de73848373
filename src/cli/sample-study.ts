import { randomUUID } from 'node:crypto';
import dcmjs from 'dcmjs';

/**
 * A small synthetic CT study for the demo: two series of 128x128 16-bit slices of a phantom (a disc
 * whose density changes slice by slice), explicit VR little endian. Entirely made up: no patient data.
 */
export interface SampleInstance {
  studyUid: string;
  seriesUid: string;
  sopUid: string;
  bytes: Buffer;
}

const CT_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.2';
const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';

export function uid(): string {
  // 2.25 + the UUID as a decimal integer (PS3.5 B.2).
  return `2.25.${BigInt(`0x${randomUUID().replace(/-/g, '')}`).toString()}`;
}

export function sampleStudy(opts: { series?: number; slices?: number; size?: number } = {}): SampleInstance[] {
  const { series = 2, slices = 5, size = 128 } = opts;
  const studyUid = uid();
  const out: SampleInstance[] = [];
  for (let s = 1; s <= series; s++) {
    const seriesUid = uid();
    for (let i = 1; i <= slices; i++) {
      const sopUid = uid();
      out.push({ studyUid, seriesUid, sopUid, bytes: writeSlice({ studyUid, seriesUid, sopUid, series: s, slice: i, slices, size }) });
    }
  }
  return out;
}

function writeSlice(a: { studyUid: string; seriesUid: string; sopUid: string; series: number; slice: number; slices: number; size: number }): Buffer {
  const pixels = new Uint16Array(a.size * a.size);
  const c = a.size / 2;
  const r = a.size * (0.25 + 0.15 * Math.sin((Math.PI * a.slice) / (a.slices + 1)));
  for (let y = 0; y < a.size; y++) {
    for (let x = 0; x < a.size; x++) {
      const d = Math.hypot(x - c, y - c);
      pixels[y * a.size + x] = d < r ? 1000 + Math.round(40 * a.slice + 200 * (1 - d / r)) : 24;
    }
  }
  const meta = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: CT_IMAGE_STORAGE,
    MediaStorageSOPInstanceUID: a.sopUid,
    TransferSyntaxUID: EXPLICIT_VR_LITTLE_ENDIAN,
    ImplementationClassUID: '2.25.181287203912470598263217347601432116893',
    ImplementationVersionName: 'AVARA_GW_DEMO',
  };
  const dataset = {
    SpecificCharacterSet: 'ISO_IR 192',
    SOPClassUID: CT_IMAGE_STORAGE,
    SOPInstanceUID: a.sopUid,
    StudyDate: '20261204',
    StudyTime: '120000',
    Modality: 'CT',
    Manufacturer: 'avara-gateway demo',
    StudyDescription: 'Demo phantom study',
    SeriesDescription: a.series === 1 ? 'Phantom axial' : `Phantom axial ${a.series}`,
    PatientName: 'Demo^Phantom',
    PatientID: 'AVARA-DEMO',
    PatientBirthDate: '',
    PatientSex: 'O',
    StudyInstanceUID: a.studyUid,
    SeriesInstanceUID: a.seriesUid,
    StudyID: 'DEMO1',
    SeriesNumber: String(a.series),
    InstanceNumber: String(a.slice),
    ImagePositionPatient: ['0', '0', String(a.slice * 5)],
    ImageOrientationPatient: ['1', '0', '0', '0', '1', '0'],
    SliceThickness: '5',
    SamplesPerPixel: 1,
    PhotometricInterpretation: 'MONOCHROME2',
    Rows: a.size,
    Columns: a.size,
    PixelSpacing: ['1', '1'],
    BitsAllocated: 16,
    BitsStored: 16,
    HighBit: 15,
    PixelRepresentation: 0,
    RescaleIntercept: '-1024',
    RescaleSlope: '1',
    WindowCenter: '40',
    WindowWidth: '400',
    PixelData: [pixels.buffer],
    _vrMap: { PixelData: 'OW' },
  };
  const dict = new dcmjs.data.DicomDict(dcmjs.data.DicomMetaDictionary.denaturalizeDataset(meta));
  dict.dict = dcmjs.data.DicomMetaDictionary.denaturalizeDataset(dataset);
  return Buffer.from(dict.write());
}

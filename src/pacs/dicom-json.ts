/** Reading values out of DICOM JSON (PS3.18 Annex F) objects. */
export type DicomJson = Record<string, { vr?: string; Value?: unknown[] } | undefined>;

export function str(obj: DicomJson, tag: string): string | undefined {
  const v = obj[tag]?.Value?.[0];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'object' && v !== null && 'Alphabetic' in v) return String((v as { Alphabetic: unknown }).Alphabetic);
  return String(v);
}

export function num(obj: DicomJson, tag: string): number | undefined {
  const s = str(obj, tag);
  if (s === undefined) return undefined;
  const n = Number(s);
  return Number.isFinite(n) ? n : undefined;
}

export const Tag = {
  StudyInstanceUID: '0020000D',
  SeriesInstanceUID: '0020000E',
  SOPInstanceUID: '00080018',
  SOPClassUID: '00080016',
  TransferSyntaxUID: '00020010',
  AvailableTransferSyntaxUID: '00083002',
  SeriesDescription: '0008103E',
  InstanceNumber: '00200013',
  NumberOfFrames: '00280008',
  Modality: '00080060',
  NumberOfSeriesRelatedInstances: '00201209',
  NumberOfStudyRelatedInstances: '00201208',
  NumberOfStudyRelatedSeries: '00201206',
} as const;

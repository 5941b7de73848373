import { AppError } from '../http/errors.js';
import type { LinkClaims } from '../links/link-signer.js';
import { isDicomUid } from '../webhooks/event-schemas.js';
import type { DicomHeader } from './dicom-header.js';

export interface UploadedObject {
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sopInstanceUid: string;
  sopClassUid: string;
  transferSyntaxUid: string;
}

/**
 * What the header must say before anything is sent to an archive: a complete identity with valid UIDs,
 * file meta that agrees with the dataset, and the study (series, instance) the link was issued for.
 * Codes are for the viewer to show; messages name attributes, never patient data.
 */
export function checkObject(h: DicomHeader, link: Pick<LinkClaims, 'st' | 'se' | 'so'>): UploadedObject {
  const transferSyntaxUid = required(h.transferSyntaxUid, 'TransferSyntaxUID (0002,0010)');
  const sopClassUid = required(h.sopClassUid, 'SOPClassUID (0008,0016)');
  const sopInstanceUid = required(h.sopInstanceUid, 'SOPInstanceUID (0008,0018)');
  const studyInstanceUid = required(h.studyInstanceUid, 'StudyInstanceUID (0020,000D)');
  const seriesInstanceUid = required(h.seriesInstanceUid, 'SeriesInstanceUID (0020,000E)');
  for (const [name, uid] of [
    ['TransferSyntaxUID', transferSyntaxUid],
    ['SOPClassUID', sopClassUid],
    ['SOPInstanceUID', sopInstanceUid],
    ['StudyInstanceUID', studyInstanceUid],
    ['SeriesInstanceUID', seriesInstanceUid],
  ] as const) {
    if (!isDicomUid(uid)) throw new AppError(422, 'invalid_uid', `${name} is not a valid DICOM UID (digits and dots, at most 64 characters)`);
  }
  if (h.mediaStorageSopInstanceUid !== undefined && h.mediaStorageSopInstanceUid !== sopInstanceUid) {
    throw new AppError(422, 'invalid_dicom', 'MediaStorageSOPInstanceUID (0002,0003) differs from SOPInstanceUID (0008,0018)');
  }
  if (h.mediaStorageSopClassUid !== undefined && h.mediaStorageSopClassUid !== sopClassUid) {
    throw new AppError(422, 'invalid_dicom', 'MediaStorageSOPClassUID (0002,0002) differs from SOPClassUID (0008,0016)');
  }
  if (studyInstanceUid !== link.st) throw new AppError(422, 'study_mismatch', 'the object belongs to another study than the one this upload link is for');
  if (link.se && seriesInstanceUid !== link.se) throw new AppError(422, 'series_mismatch', 'the object belongs to another series than the one this upload link is for');
  if (link.so && sopInstanceUid !== link.so) throw new AppError(422, 'sop_mismatch', 'the object is not the instance this upload link is for');
  return { studyInstanceUid, seriesInstanceUid, sopInstanceUid, sopClassUid, transferSyntaxUid };
}

function required(v: string | undefined, name: string): string {
  if (v === undefined || v === '') throw new AppError(422, 'missing_attribute', `the object has no ${name}`);
  return v;
}

import { describe, expect, it } from 'vitest';
import { AppError } from '../http/errors.js';
import type { DicomHeader } from './dicom-header.js';
import { checkObject } from './upload-checks.js';

const H: DicomHeader = {
  transferSyntaxUid: '1.2.840.10008.1.2.1',
  mediaStorageSopClassUid: '1.2.840.10008.5.1.4.1.1.7',
  mediaStorageSopInstanceUid: '2.25.3',
  sopClassUid: '1.2.840.10008.5.1.4.1.1.7',
  sopInstanceUid: '2.25.3',
  studyInstanceUid: '2.25.1',
  seriesInstanceUid: '2.25.2',
};
const LINK = { st: '2.25.1' };

function code(h: DicomHeader, link: { st: string; se?: string; so?: string } = LINK): string {
  try {
    checkObject(h, link);
    return 'ok';
  } catch (err) {
    if (err instanceof AppError) return `${err.status} ${err.code}`;
    throw err;
  }
}

describe('checkObject', () => {
  it('accepts an object of the link’s study and returns its identity', () => {
    expect(checkObject(H, { st: '2.25.1', se: '2.25.2', so: '2.25.3' })).toEqual({
      studyInstanceUid: '2.25.1',
      seriesInstanceUid: '2.25.2',
      sopInstanceUid: '2.25.3',
      sopClassUid: '1.2.840.10008.5.1.4.1.1.7',
      transferSyntaxUid: '1.2.840.10008.1.2.1',
    });
  });

  it('refuses another study, series or instance than the link binds', () => {
    expect(code(H, { st: '2.25.9' })).toBe('422 study_mismatch');
    expect(code(H, { st: '2.25.1', se: '2.25.9' })).toBe('422 series_mismatch');
    expect(code(H, { st: '2.25.1', so: '2.25.9' })).toBe('422 sop_mismatch');
  });

  it('refuses missing and invalid UIDs, and file meta that contradicts the dataset', () => {
    expect(code({ ...H, sopInstanceUid: undefined })).toBe('422 missing_attribute');
    expect(code({ ...H, seriesInstanceUid: '' })).toBe('422 missing_attribute');
    expect(code({ ...H, sopInstanceUid: '1.2.03', mediaStorageSopInstanceUid: '1.2.03' })).toBe('422 invalid_uid');
    expect(code({ ...H, sopInstanceUid: '(too long)' })).toBe('422 invalid_uid');
    expect(code({ ...H, studyInstanceUid: `2.25.${'1'.repeat(70)}` }, { st: `2.25.${'1'.repeat(70)}` })).toBe('422 invalid_uid');
    expect(code({ ...H, mediaStorageSopInstanceUid: '2.25.4' })).toBe('422 invalid_dicom');
    expect(code({ ...H, mediaStorageSopClassUid: '1.2.840.10008.5.1.4.1.1.2' })).toBe('422 invalid_dicom');
    expect(code({ ...H, mediaStorageSopInstanceUid: undefined, mediaStorageSopClassUid: undefined })).toBe('ok');
  });
});

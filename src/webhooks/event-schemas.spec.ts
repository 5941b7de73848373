import { describe, expect, it } from 'vitest';
import { describeIssues, isDicomUid, knownEvent } from './event-schemas.js';

const hex = '0123456789abcdef0123456789abcdef';
const study = { id: `whe_${hex}`, type: 'study.access_requested', data: { studyId: `stu_${hex}`, studyInstanceUid: '1.2.840.10008.5.1.4.1.1.2' } };

function problem(event: unknown): string | undefined {
  const r = knownEvent.safeParse(event);
  return r.success ? undefined : describeIssues(r.error);
}

describe('DICOM UIDs', () => {
  it.each(['1.2.840.10008.5.1.4.1.1.2', '0', '2.25.329800735698586629295641978511506172918', '1.0.3'])('accepts %s', (uid) => {
    expect(isDicomUid(uid)).toBe(true);
  });
  it.each(['', '1..2', '.1.2', '1.2.', '1.02', 'a.b', '1.2 ', '1'.repeat(65), '1.2.-3'])('refuses "%s"', (uid) => {
    expect(isDicomUid(uid)).toBe(false);
  });
  it('accepts exactly 64 characters', () => {
    expect(isDicomUid(`1.${'2'.repeat(62)}`)).toBe(true);
  });
});

describe('event schemas', () => {
  it('accepts each event type as the API defines it', () => {
    expect(problem(study)).toBeUndefined();
    expect(
      problem({ id: `whe_${hex}`, type: 'secondary_capture.access_requested', data: { studyId: `stu_${hex}`, studyInstanceUid: '1.2.3', seriesInstanceUid: '1.2.3.4', sopInstanceUid: '1.2.3.4.5' } }),
    ).toBeUndefined();
    expect(
      problem({ id: `whe_${hex}`, type: 'report.delivered', data: { isCritical: false, presignedUrl: 'https://example.org/r.pdf?sig=1', reportId: `rep_${hex}`, studyId: `stu_${hex}` } }),
    ).toBeUndefined();
  });
  it('names the bad field', () => {
    expect(problem({ ...study, id: `whe_${hex.toUpperCase()}` })).toMatch(/^id:/);
    expect(problem({ ...study, data: { ...study.data, studyId: `rep_${hex}` } })).toMatch(/^data\.studyId:/);
    expect(problem({ ...study, data: { ...study.data, studyInstanceUid: '1.02.3' } })).toMatch(/^data\.studyInstanceUid:/);
    expect(problem({ ...study, data: { studyId: `stu_${hex}` } })).toMatch(/data\.studyInstanceUid/);
    expect(problem({ id: `whe_${hex}`, type: 'report.delivered', data: { isCritical: 'yes', presignedUrl: 'ftp://x', reportId: `rep_${hex}`, studyId: `stu_${hex}` } })).toMatch(
      /data\.isCritical.*data\.presignedUrl/,
    );
  });
  it('refuses ids of the wrong length', () => {
    expect(problem({ ...study, id: `whe_${hex}0` })).toMatch(/^id:/);
    expect(problem({ ...study, id: `whe_${hex.slice(1)}` })).toMatch(/^id:/);
  });
});

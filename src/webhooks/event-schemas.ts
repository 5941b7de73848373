import { z } from 'zod';
import { isHttpUrl } from '../config/env.js';

/** Schemas that follow Avara's webhook API (../shared/avara-webhooks-api.txt) field for field. */

const prefixedId = (prefix: string) =>
  z.string().regex(new RegExp(`^${prefix}_[0-9a-f]{32}$`), `must be ${prefix}_ followed by 32 lowercase hex characters`);

export const webhookEventId = prefixedId('whe');
export const avaraStudyId = prefixedId('stu');
export const avaraReportId = prefixedId('rep');

/** DICOM UID (PS3.5 §9.1): digits and dots, at most 64 characters, no empty component, no leading zero. */
export function isDicomUid(v: string): boolean {
  if (v.length === 0 || v.length > 64) return false;
  return v.split('.').every((c) => /^(0|[1-9][0-9]*)$/.test(c));
}
export const dicomUid = z
  .string()
  .refine(isDicomUid, 'must be a DICOM UID: at most 64 characters, digits and dots, no empty component, no leading zero');

const httpsOrHttpUrl = z.string().refine(isHttpUrl, 'must be an absolute http(s) URL');

export const studyAccessRequested = z.object({
  id: webhookEventId,
  type: z.literal('study.access_requested'),
  data: z.object({ studyId: avaraStudyId, studyInstanceUid: dicomUid }),
});

export const secondaryCaptureAccessRequested = z.object({
  id: webhookEventId,
  type: z.literal('secondary_capture.access_requested'),
  data: z.object({
    studyId: avaraStudyId,
    studyInstanceUid: dicomUid,
    seriesInstanceUid: dicomUid.optional(),
    sopInstanceUid: dicomUid.optional(),
  }),
});

export const reportDelivered = z.object({
  id: webhookEventId,
  type: z.literal('report.delivered'),
  data: z.object({
    isCritical: z.boolean(),
    presignedUrl: httpsOrHttpUrl,
    reportId: avaraReportId,
    studyId: avaraStudyId,
    plainText: z.string().optional(),
  }),
});

export const knownEvent = z.discriminatedUnion('type', [studyAccessRequested, secondaryCaptureAccessRequested, reportDelivered]);
export const KNOWN_EVENT_TYPES = ['study.access_requested', 'secondary_capture.access_requested', 'report.delivered'] as const;

export type StudyAccessRequestedEvent = z.infer<typeof studyAccessRequested>;
export type SecondaryCaptureAccessRequestedEvent = z.infer<typeof secondaryCaptureAccessRequested>;
export type ReportDeliveredEvent = z.infer<typeof reportDelivered>;
export type KnownEvent = z.infer<typeof knownEvent>;

export interface MediaUrl {
  mimeType: string;
  url: string;
  fileName?: string;
}
export interface StudyAccessResponse {
  authorized: boolean;
  urls: string[];
  error?: string;
  mediaUrls?: MediaUrl[];
}
export interface SecondaryCaptureAccessResponse {
  authorized: boolean;
  uploadUrls: string[];
  error?: string;
}
export interface ReportDeliveredResponse {
  success: boolean;
}

/** "data.studyInstanceUid: must be a DICOM UID…" — names the field, never echoes its value. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.join('.') || 'body'}: ${i.message}`)
    .join('; ');
}

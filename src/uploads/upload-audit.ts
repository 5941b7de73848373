import type { AuditTrail } from '../observability/audit-trail.js';
import type { Metrics } from '../observability/metrics.js';
import type { UploadLinksIssued } from '../webhooks/handlers/secondary-capture.handler.js';
import type { UploadServed } from './upload.route.js';

/** Every upload served goes to the metrics and the audit trail: UIDs, bytes, client, status; no tokens. */
export function recordUpload(metrics: Metrics, audit: AuditTrail): (u: UploadServed) => void {
  return (u) => {
    metrics.uploads.inc({ outcome: u.outcome });
    metrics.streamedBytes.inc({ direction: 'upload' }, u.bytes);
    metrics.streamedObjects.inc({ direction: 'upload', status: String(u.status) });
    audit.record({
      action: 'upload',
      studyId: u.claims.sid,
      studyInstanceUid: u.object?.studyInstanceUid ?? u.claims.st,
      seriesInstanceUid: u.object?.seriesInstanceUid ?? u.claims.se,
      sopInstanceUid: u.object?.sopInstanceUid ?? u.claims.so,
      client: u.client,
      status: u.status,
      bytes: u.bytes,
      detail: {
        destination: u.destination,
        outcome: u.outcome,
        ms: Math.round(u.ms),
        ...(u.object ? { sopClassUid: u.object.sopClassUid, transferSyntaxUid: u.object.transferSyntaxUid } : {}),
        ...(u.error ? { error: u.error } : {}),
      },
    });
  };
}

/** Every set of upload links issued: one audit event per webhook, one count per link. */
export function recordUploadLinks(metrics: Metrics, audit: AuditTrail): (i: UploadLinksIssued) => void {
  return (i) => {
    metrics.linksIssued.inc({ kind: 'upload' }, i.destinations.length);
    audit.record({
      action: 'upload_links_issued',
      webhookId: i.webhookId,
      studyId: i.studyId,
      studyInstanceUid: i.studyUid,
      seriesInstanceUid: i.seriesUid,
      sopInstanceUid: i.sopUid,
      detail: { links: i.destinations.length, destinations: i.destinations, expiresAt: new Date(i.expiresAt * 1000).toISOString() },
    });
  };
}

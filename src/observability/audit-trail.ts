import type { Db } from '../store/database.js';

/**
 * Who accessed which study, when, and what left the building. Append-only (triggers refuse UPDATE and
 * DELETE), queryable by study and time, exported as JSON lines. Holds UIDs, ids, sizes and client
 * addresses only: no patient data, no report text, no link tokens.
 */
export type AuditAction = 'links_issued' | 'upload_links_issued' | 'download' | 'media_download' | 'upload' | 'report_filed' | 'report_failed';

export interface AuditEvent {
  at: number;
  action: AuditAction;
  studyId?: string;
  studyInstanceUid?: string;
  seriesInstanceUid?: string;
  sopInstanceUid?: string;
  webhookId?: string;
  client?: string;
  status?: number;
  bytes?: number;
  detail?: Record<string, unknown>;
}

export interface AuditQuery {
  /** An Avara studyId (stu_…) or a StudyInstanceUID. */
  study?: string;
  action?: AuditAction;
  since?: number;
  until?: number;
  limit?: number;
}

export class AuditTrail {
  private readonly insert;

  constructor(private readonly db: Db) {
    this.insert = db.prepare(
      `INSERT INTO audit_events (at, action, study_id, study_instance_uid, series_instance_uid, sop_instance_uid, webhook_id, client, status, bytes, detail)
       VALUES (@at, @action, @studyId, @studyInstanceUid, @seriesInstanceUid, @sopInstanceUid, @webhookId, @client, @status, @bytes, @detail)`,
    );
  }

  record(e: Omit<AuditEvent, 'at'> & { at?: number }): void {
    this.insert.run({
      at: e.at ?? Date.now(),
      action: e.action,
      studyId: e.studyId ?? null,
      studyInstanceUid: e.studyInstanceUid ?? null,
      seriesInstanceUid: e.seriesInstanceUid ?? null,
      sopInstanceUid: e.sopInstanceUid ?? null,
      webhookId: e.webhookId ?? null,
      client: e.client ?? null,
      status: e.status ?? null,
      bytes: e.bytes ?? null,
      detail: e.detail ? JSON.stringify(e.detail) : null,
    });
  }

  *query(q: AuditQuery = {}): Generator<AuditEvent> {
    const where: string[] = [];
    const args: Record<string, unknown> = {};
    if (q.study) {
      where.push(q.study.startsWith('stu_') ? 'study_id = @study' : 'study_instance_uid = @study');
      args.study = q.study;
    }
    if (q.action) {
      where.push('action = @action');
      args.action = q.action;
    }
    if (q.since !== undefined) {
      where.push('at >= @since');
      args.since = q.since;
    }
    if (q.until !== undefined) {
      where.push('at < @until');
      args.until = q.until;
    }
    const sql = `SELECT * FROM audit_events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq ${q.limit ? 'LIMIT @limit' : ''}`;
    if (q.limit) args.limit = q.limit;
    for (const row of this.db.prepare(sql).iterate(args) as Iterable<AuditRow>) yield fromRow(row);
  }
}

interface AuditRow {
  at: number;
  action: AuditAction;
  study_id: string | null;
  study_instance_uid: string | null;
  series_instance_uid: string | null;
  sop_instance_uid: string | null;
  webhook_id: string | null;
  client: string | null;
  status: number | null;
  bytes: number | null;
  detail: string | null;
}

function fromRow(r: AuditRow): AuditEvent {
  const e: AuditEvent = { at: r.at, action: r.action };
  if (r.study_id) e.studyId = r.study_id;
  if (r.study_instance_uid) e.studyInstanceUid = r.study_instance_uid;
  if (r.series_instance_uid) e.seriesInstanceUid = r.series_instance_uid;
  if (r.sop_instance_uid) e.sopInstanceUid = r.sop_instance_uid;
  if (r.webhook_id) e.webhookId = r.webhook_id;
  if (r.client) e.client = r.client;
  if (r.status !== null) e.status = r.status;
  if (r.bytes !== null) e.bytes = r.bytes;
  if (r.detail) e.detail = JSON.parse(r.detail) as Record<string, unknown>;
  return e;
}

/** One JSON object per line, ISO time first: what an auditor's tooling reads. */
export function toJsonLine(e: AuditEvent): string {
  return JSON.stringify({ time: new Date(e.at).toISOString(), ...e });
}

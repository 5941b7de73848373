import type { Db } from '../store/database.js';

/**
 * The durable record of every report.delivered Avara was told we have: one row per reportId in
 * `report_jobs` (DATA_DIR/gateway.sqlite, WAL, synchronous=FULL). Intake writes the row before the
 * webhook is answered; the worker moves it along (download → filing) and keeps the reason when it gives up.
 *
 * Intake uses group commit: requests arriving together are written in one transaction (one fsync) and
 * all of them are answered once it is on disk. Nothing is acknowledged before its own row is committed.
 * The commit runs on the event loop: a commit thread was tried and measured no faster on the 2-core target
 * (fsync takes about a millisecond there); it would pay off only on storage with a slow fsync.
 *
 * The free functions at the bottom (listJobs, getJob, retryJob, jobCounts) are the operator API the CLI
 * uses; they take a Db so they work from another process while the gateway runs (WAL allows that).
 */

export type ReportState = 'pending' | 'filed' | 'unmatched' | 'failed';
export type NotifyState = 'none' | 'pending' | 'sent' | 'failed';
export const REPORT_STATES: readonly ReportState[] = ['pending', 'filed', 'unmatched', 'failed'];

/** What intake journals from a verified report.delivered event. */
export interface ReportDelivery {
  eventId: string;
  reportId: string;
  studyId: string;
  isCritical: boolean;
  presignedUrl: string;
  plainText?: string;
}

export interface AcceptResult {
  /** False when the reportId was already journaled (a repeated delivery). */
  created: boolean;
  state: ReportState;
}

/** A job as the worker sees it. Holds the presigned URL (a credential) and the report text: never log it whole. */
export interface ReportJob {
  reportId: string;
  eventId: string;
  studyId: string;
  isCritical: boolean;
  plainText: string | null;
  presignedUrl: string | null;
  receivedAt: number;
  deliveries: number;
  state: ReportState;
  attempts: number;
  nextAttemptAt: number;
  giveUpAt: number;
  lastError: string | null;
  pdfBytes: number | null;
  pdfSha256: string | null;
  downloadedAt: number | null;
  studyInstanceUid: string | null;
  seriesInstanceUid: string | null;
  sopInstanceUid: string | null;
  sinksDone: string[];
  filedAt: number | null;
  updatedAt: number;
  notifyState: NotifyState;
  notifyAttempts: number;
  notifyNextAt: number | null;
  notifyGiveUpAt: number | null;
  notifyError: string | null;
}

/** What operators see: everything but the presigned URL and the report text. */
export interface ReportJobView {
  reportId: string;
  eventId: string;
  studyId: string;
  isCritical: boolean;
  state: ReportState;
  /** Where a pending job is: fetching the PDF, or filing it. */
  stage: 'download' | 'filing' | 'done';
  attempts: number;
  deliveries: number;
  receivedAt: string;
  nextAttemptAt?: string;
  giveUpAt?: string;
  lastError?: string;
  pdfBytes?: number;
  pdfSha256?: string;
  studyInstanceUid?: string;
  sopInstanceUid?: string;
  sinksDone: string[];
  filedAt?: string;
  hasPlainText: boolean;
  criticalNotification?: { state: NotifyState; attempts: number; error?: string };
}

export interface JobCounts {
  pending: number;
  filed: number;
  unmatched: number;
  failed: number;
  /** receivedAt of the oldest job not filed yet, or undefined. */
  oldestPendingReceivedAt?: number;
  criticalNotifications: { pending: number; sent: number; failed: number };
}

export interface ReportJournalOptions {
  /** How long after delivery the presigned URL is tried. */
  downloadWindowMs: number;
  /** Whether critical reports get a notification job (CRITICAL_REPORT_WEBHOOK_URL is set). */
  notifyCritical: boolean;
  maxBatch?: number;
  now?: () => number;
}

interface Pending {
  delivery: ReportDelivery;
  resolve: (r: AcceptResult) => void;
  reject: (err: unknown) => void;
}

export class ReportJournal {
  private queue: Pending[] = [];
  private scheduled = false;
  private closed = false;
  private readonly listeners: Array<() => void> = [];
  private readonly now: () => number;
  private readonly upsert;
  private readonly writeBatch;
  private readonly selectOne;
  private readonly st;

  constructor(
    private readonly db: Db,
    private readonly opts: ReportJournalOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.upsert = db.prepare(`
      INSERT INTO report_jobs (report_id, event_id, study_id, is_critical, plain_text, presigned_url, received_at, state,
                               next_attempt_at, give_up_at, updated_at, notify_state, notify_next_at, notify_give_up_at)
      VALUES (@reportId, @eventId, @studyId, @isCritical, @plainText, @presignedUrl, @now, 'pending',
              @now, @giveUpAt, @now, @notifyState, @notifyNextAt, @notifyGiveUpAt)
      ON CONFLICT(report_id) DO UPDATE SET
        deliveries = deliveries + 1,
        updated_at = excluded.updated_at,
        -- A repeated delivery of a report whose PDF we do not hold yet brings a fresh presigned URL: use it.
        presigned_url = CASE WHEN pdf_sha256 IS NULL THEN excluded.presigned_url ELSE presigned_url END,
        give_up_at = CASE WHEN pdf_sha256 IS NULL AND state IN ('pending', 'failed') THEN excluded.give_up_at ELSE give_up_at END,
        attempts = CASE WHEN pdf_sha256 IS NULL AND state = 'failed' THEN 0 ELSE attempts END,
        next_attempt_at = CASE WHEN pdf_sha256 IS NULL AND state = 'failed' THEN excluded.next_attempt_at ELSE next_attempt_at END,
        state = CASE WHEN pdf_sha256 IS NULL AND state = 'failed' THEN 'pending' ELSE state END
      RETURNING deliveries, state`);
    this.writeBatch = db.transaction((items: ReportDelivery[], now: number) => items.map((d) => this.write(d, now)));
    this.selectOne = db.prepare('SELECT * FROM report_jobs WHERE report_id = ?');
    this.st = {
      due: db.prepare(`SELECT * FROM report_jobs WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?`),
      notifyDue: db.prepare(`SELECT * FROM report_jobs WHERE notify_state = 'pending' AND notify_next_at <= ? ORDER BY notify_next_at LIMIT ?`),
      nextDue: db.prepare(`SELECT report_id AS id, next_attempt_at AS at FROM report_jobs WHERE state = 'pending' ORDER BY next_attempt_at LIMIT ?`),
      nextNotify: db.prepare(`SELECT report_id AS id, notify_next_at AS at FROM report_jobs WHERE notify_state = 'pending' ORDER BY notify_next_at LIMIT ?`),
      downloaded: db.prepare(`UPDATE report_jobs SET pdf_bytes = @bytes, pdf_sha256 = @sha256, downloaded_at = @now, presigned_url = NULL,
                                attempts = 0, next_attempt_at = @now, give_up_at = @giveUpAt, last_error = NULL, updated_at = @now
                              WHERE report_id = @reportId`),
      target: db.prepare(`UPDATE report_jobs SET study_instance_uid = @studyInstanceUid, series_instance_uid = @seriesInstanceUid,
                            sop_instance_uid = @sopInstanceUid, updated_at = @now WHERE report_id = @reportId`),
      sinkDone: db.prepare(`UPDATE report_jobs SET sinks_done = @sinks, updated_at = @now WHERE report_id = @reportId`),
      finish: db.prepare(`UPDATE report_jobs SET state = @state, filed_at = @now, last_error = @error, updated_at = @now WHERE report_id = @reportId`),
      retry: db.prepare(`UPDATE report_jobs SET attempts = @attempts, next_attempt_at = @nextAt, last_error = @error, updated_at = @now
                         WHERE report_id = @reportId AND state = 'pending'`),
      fail: db.prepare(`UPDATE report_jobs SET state = 'failed', attempts = @attempts, last_error = @error, updated_at = @now
                        WHERE report_id = @reportId AND state = 'pending'`),
      notified: db.prepare(`UPDATE report_jobs SET notify_state = 'sent', notify_attempts = @attempts, notify_error = NULL, updated_at = @now
                            WHERE report_id = @reportId`),
      notifyRetry: db.prepare(`UPDATE report_jobs SET notify_attempts = @attempts, notify_next_at = @nextAt, notify_error = @error, updated_at = @now
                               WHERE report_id = @reportId AND notify_state = 'pending'`),
      notifyFail: db.prepare(`UPDATE report_jobs SET notify_state = 'failed', notify_attempts = @attempts, notify_error = @error, updated_at = @now
                              WHERE report_id = @reportId AND notify_state = 'pending'`),
      abandonNotify: db.prepare(`UPDATE report_jobs SET notify_state = 'failed', notify_error = @error, updated_at = @now WHERE notify_state = 'pending'`),
    };
  }

  /**
   * Journals a delivery; resolves once its row is committed to disk, rejects when it could not be
   * (the webhook must then fail so that Avara retries).
   */
  accept(delivery: ReportDelivery): Promise<AcceptResult> {
    if (this.closed) return Promise.reject(new Error('the report journal is closed'));
    return new Promise<AcceptResult>((resolve, reject) => {
      this.queue.push({ delivery, resolve, reject });
      this.schedule();
    });
  }

  /** Called after every committed intake batch (the worker wakes up on it). */
  onCommitted(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** Writes whatever intake is waiting, now. */
  flush(): void {
    this.scheduled = false;
    const max = this.opts.maxBatch ?? 512;
    let committed = false;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, max);
      const now = this.now();
      try {
        const results = this.writeBatch(batch.map((p) => p.delivery), now);
        batch.forEach((p, i) => p.resolve(results[i]!));
        committed = true;
      } catch (err) {
        if (batch.length === 1) {
          batch[0]!.reject(err);
          continue;
        }
        // One bad row must not fail the others: write them one by one.
        for (const p of batch) {
          try {
            p.resolve(this.writeBatch([p.delivery], now)[0]!);
            committed = true;
          } catch (e) {
            p.reject(e);
          }
        }
      }
    }
    if (committed) for (const l of this.listeners) l();
  }

  /** Flushes what is queued and refuses further intake. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
  }

  get(reportId: string): ReportJob | undefined {
    const row = this.selectOne.get(reportId) as JobRow | undefined;
    return row ? fromRow(row) : undefined;
  }

  /** Pending jobs whose next attempt is due, oldest first, skipping the ones in `busy`. */
  due(now: number, limit: number, busy: ReadonlySet<string>): ReportJob[] {
    return (this.st.due.all(now, limit + busy.size) as JobRow[]).map(fromRow).filter((j) => !busy.has(j.reportId)).slice(0, limit);
  }

  notificationsDue(now: number, limit: number, busy: ReadonlySet<string>): ReportJob[] {
    return (this.st.notifyDue.all(now, limit + busy.size) as JobRow[]).map(fromRow).filter((j) => !busy.has(j.reportId)).slice(0, limit);
  }

  /** When the earliest job not in `busy` is due (filing or notification), or undefined when none waits. */
  nextDueAt(busyJobs: ReadonlySet<string>, busyNotifications: ReadonlySet<string>): number | undefined {
    const first = (rows: unknown[], busy: ReadonlySet<string>) => (rows as Array<{ id: string; at: number }>).find((r) => !busy.has(r.id))?.at;
    const a = first(this.st.nextDue.all(busyJobs.size + 1), busyJobs);
    const b = first(this.st.nextNotify.all(busyNotifications.size + 1), busyNotifications);
    if (a === undefined) return b;
    if (b === undefined) return a;
    return Math.min(a, b);
  }

  markDownloaded(reportId: string, info: { bytes: number; sha256: string; giveUpAt: number; now: number }): void {
    this.st.downloaded.run({ reportId, ...info });
  }

  markTarget(reportId: string, t: { studyInstanceUid: string; seriesInstanceUid?: string; sopInstanceUid?: string; now: number }): void {
    this.st.target.run({ reportId, studyInstanceUid: t.studyInstanceUid, seriesInstanceUid: t.seriesInstanceUid ?? null, sopInstanceUid: t.sopInstanceUid ?? null, now: t.now });
  }

  markSinksDone(reportId: string, sinks: string[], now: number): void {
    this.st.sinkDone.run({ reportId, sinks: [...new Set(sinks)].join(','), now });
  }

  /** Terminal success: every sink filed ('filed'), or the study is unknown and the report went to the directory ('unmatched'). */
  markFinished(reportId: string, state: 'filed' | 'unmatched', now: number, note?: string): void {
    this.st.finish.run({ reportId, state, now, error: note ?? null });
  }

  scheduleRetry(reportId: string, r: { attempts: number; nextAt: number; error: string; now: number }): void {
    this.st.retry.run({ reportId, ...r });
  }

  markFailed(reportId: string, f: { attempts: number; error: string; now: number }): void {
    this.st.fail.run({ reportId, ...f });
  }

  markNotified(reportId: string, attempts: number, now: number): void {
    this.st.notified.run({ reportId, attempts, now });
  }

  scheduleNotifyRetry(reportId: string, r: { attempts: number; nextAt: number; error: string; now: number }): void {
    this.st.notifyRetry.run({ reportId, ...r });
  }

  markNotifyFailed(reportId: string, f: { attempts: number; error: string; now: number }): void {
    this.st.notifyFail.run({ reportId, ...f });
  }

  /** Pending notifications that can no longer be sent (the webhook URL was removed from the configuration). */
  abandonNotifications(error: string, now = this.now()): number {
    return this.st.abandonNotify.run({ error, now }).changes;
  }

  counts(): JobCounts {
    return jobCounts(this.db);
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // The next turn of the event loop: every request read in this one joins the batch. Waiting longer
    // (a timer of a few ms) was measured: it only added latency.
    setImmediate(() => this.flush());
  }

  private write(d: ReportDelivery, now: number): AcceptResult {
    const notify = d.isCritical && this.opts.notifyCritical;
    const row = this.upsert.get({
      reportId: d.reportId,
      eventId: d.eventId,
      studyId: d.studyId,
      isCritical: d.isCritical ? 1 : 0,
      plainText: d.plainText ?? null,
      presignedUrl: d.presignedUrl,
      now,
      giveUpAt: now + this.opts.downloadWindowMs,
      notifyState: notify ? 'pending' : 'none',
      notifyNextAt: notify ? now : null,
      notifyGiveUpAt: notify ? now + this.opts.downloadWindowMs : null,
    }) as { deliveries: number; state: ReportState };
    return { created: row.deliveries === 1, state: row.state };
  }
}

// ------------------------------------------------------------------------------------------------
// Operator API (the CLI): works on any open Db, including from another process.
// ------------------------------------------------------------------------------------------------

/** Jobs, newest first; `state` filters. Never includes the presigned URL or the report text. */
export function listJobs(db: Db, q: { state?: ReportState; limit?: number } = {}): ReportJobView[] {
  const limit = Math.max(1, Math.min(q.limit ?? 100, 10_000));
  const rows = q.state
    ? db.prepare('SELECT * FROM report_jobs WHERE state = ? ORDER BY received_at DESC LIMIT ?').all(q.state, limit)
    : db.prepare('SELECT * FROM report_jobs ORDER BY received_at DESC LIMIT ?').all(limit);
  return (rows as JobRow[]).map((r) => toView(fromRow(r)));
}

export function getJob(db: Db, reportId: string): ReportJobView | undefined {
  const row = db.prepare('SELECT * FROM report_jobs WHERE report_id = ?').get(reportId) as JobRow | undefined;
  return row ? toView(fromRow(row)) : undefined;
}

export type RetryOutcome =
  | { ok: true; previousState: ReportState; notificationRetried: boolean }
  | { ok: false; reason: 'not_found' | 'already_filed'; message: string };

/**
 * Puts a failed or unmatched job (and a failed critical notification) back in the queue, due now, with
 * `windowMs` (default one hour) more to succeed. A pending job is made due now. A filed job is filed
 * again only with `force` (the SOP Instance UID is derived from the reportId, so the PACS keeps one object).
 * A running gateway picks the job up within REPORT_POLL_MS.
 */
export function retryJob(db: Db, reportId: string, opts: { force?: boolean; windowMs?: number; now?: number } = {}): RetryOutcome {
  const now = opts.now ?? Date.now();
  const windowMs = opts.windowMs ?? 3600_000;
  return db.transaction((): RetryOutcome => {
    const row = db.prepare('SELECT state, notify_state AS notifyState FROM report_jobs WHERE report_id = ?').get(reportId) as
      | { state: ReportState; notifyState: NotifyState }
      | undefined;
    if (!row) return { ok: false, reason: 'not_found', message: `no report job ${reportId}` };
    if (row.state === 'filed' && !opts.force) {
      return { ok: false, reason: 'already_filed', message: `${reportId} is already filed (use force to file it again)` };
    }
    db.prepare(
      `UPDATE report_jobs SET state = 'pending', attempts = 0, next_attempt_at = @now, give_up_at = MAX(give_up_at, @until),
         sinks_done = CASE WHEN state = 'filed' THEN '' ELSE sinks_done END, updated_at = @now
       WHERE report_id = @reportId`,
    ).run({ reportId, now, until: now + windowMs });
    const notificationRetried = row.notifyState === 'failed';
    if (notificationRetried) {
      db.prepare(
        `UPDATE report_jobs SET notify_state = 'pending', notify_attempts = 0, notify_next_at = @now, notify_give_up_at = @until, updated_at = @now
         WHERE report_id = @reportId`,
      ).run({ reportId, now, until: now + windowMs });
    }
    return { ok: true, previousState: row.state, notificationRetried };
  })();
}

export function jobCounts(db: Db): JobCounts {
  const counts: JobCounts = { pending: 0, filed: 0, unmatched: 0, failed: 0, criticalNotifications: { pending: 0, sent: 0, failed: 0 } };
  for (const r of db.prepare('SELECT state, COUNT(*) AS n FROM report_jobs GROUP BY state').all() as Array<{ state: ReportState; n: number }>) {
    counts[r.state] = r.n;
  }
  const oldest = db.prepare(`SELECT MIN(received_at) AS at FROM report_jobs WHERE state = 'pending'`).get() as { at: number | null };
  if (oldest.at !== null) counts.oldestPendingReceivedAt = oldest.at;
  for (const r of db.prepare(`SELECT notify_state AS s, COUNT(*) AS n FROM report_jobs WHERE notify_state != 'none' GROUP BY notify_state`).all() as Array<{
    s: Exclude<NotifyState, 'none'>;
    n: number;
  }>) {
    counts.criticalNotifications[r.s] = r.n;
  }
  return counts;
}

// ------------------------------------------------------------------------------------------------

interface JobRow {
  report_id: string;
  event_id: string;
  study_id: string;
  is_critical: number;
  plain_text: string | null;
  presigned_url: string | null;
  received_at: number;
  deliveries: number;
  state: ReportState;
  attempts: number;
  next_attempt_at: number;
  give_up_at: number;
  last_error: string | null;
  pdf_bytes: number | null;
  pdf_sha256: string | null;
  downloaded_at: number | null;
  study_instance_uid: string | null;
  series_instance_uid: string | null;
  sop_instance_uid: string | null;
  sinks_done: string;
  filed_at: number | null;
  updated_at: number;
  notify_state: NotifyState;
  notify_attempts: number;
  notify_next_at: number | null;
  notify_give_up_at: number | null;
  notify_error: string | null;
}

function fromRow(r: JobRow): ReportJob {
  return {
    reportId: r.report_id,
    eventId: r.event_id,
    studyId: r.study_id,
    isCritical: r.is_critical === 1,
    plainText: r.plain_text,
    presignedUrl: r.presigned_url,
    receivedAt: r.received_at,
    deliveries: r.deliveries,
    state: r.state,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
    giveUpAt: r.give_up_at,
    lastError: r.last_error,
    pdfBytes: r.pdf_bytes,
    pdfSha256: r.pdf_sha256,
    downloadedAt: r.downloaded_at,
    studyInstanceUid: r.study_instance_uid,
    seriesInstanceUid: r.series_instance_uid,
    sopInstanceUid: r.sop_instance_uid,
    sinksDone: r.sinks_done ? r.sinks_done.split(',') : [],
    filedAt: r.filed_at,
    updatedAt: r.updated_at,
    notifyState: r.notify_state,
    notifyAttempts: r.notify_attempts,
    notifyNextAt: r.notify_next_at,
    notifyGiveUpAt: r.notify_give_up_at,
    notifyError: r.notify_error,
  };
}

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? undefined : new Date(ms).toISOString());

export function toView(j: ReportJob): ReportJobView {
  const v: ReportJobView = {
    reportId: j.reportId,
    eventId: j.eventId,
    studyId: j.studyId,
    isCritical: j.isCritical,
    state: j.state,
    stage: j.state !== 'pending' ? 'done' : j.pdfSha256 ? 'filing' : 'download',
    attempts: j.attempts,
    deliveries: j.deliveries,
    receivedAt: iso(j.receivedAt)!,
    sinksDone: j.sinksDone,
    hasPlainText: j.plainText !== null && j.plainText !== '',
  };
  if (j.state === 'pending') {
    v.nextAttemptAt = iso(j.nextAttemptAt);
    v.giveUpAt = iso(j.giveUpAt);
  }
  if (j.lastError) v.lastError = j.lastError;
  if (j.pdfBytes !== null) v.pdfBytes = j.pdfBytes;
  if (j.pdfSha256) v.pdfSha256 = j.pdfSha256;
  if (j.studyInstanceUid) v.studyInstanceUid = j.studyInstanceUid;
  if (j.sopInstanceUid) v.sopInstanceUid = j.sopInstanceUid;
  if (j.filedAt !== null) v.filedAt = iso(j.filedAt);
  if (j.notifyState !== 'none') v.criticalNotification = { state: j.notifyState, attempts: j.notifyAttempts, ...(j.notifyError ? { error: j.notifyError } : {}) };
  return v;
}

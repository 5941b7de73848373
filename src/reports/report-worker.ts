import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, mkdir, open, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { ReportConfig } from '../config/env.js';
import type { AuditTrail } from '../observability/audit-trail.js';
import { PacsError, type PacsClient } from '../pacs/pacs-client.js';
import type { StowClient } from '../pacs/stow.js';
import type { StudyRegistry } from '../store/study-registry.js';
import type { InstanceLister } from '../studies/instance-lister.js';
import { nextRetry, type BackoffPolicy } from './backoff.js';
import { CriticalNotifier, NotifyError } from './critical-notifier.js';
import { DownloadError, PdfDownloader } from './pdf-download.js';
import type { ReportJob, ReportJournal } from './journal.js';
import { DirSink, FilingError, PacsSink } from './sinks.js';

/**
 * Moves journaled reports along: download the PDF (while the presigned URL can be valid), file it to the
 * configured sinks, and send the critical-report notification. Claims due jobs from the journal up to
 * REPORT_WORKER_CONCURRENCY at a time, wakes on new intake, on its own timer (REPORT_POLL_MS at most) and
 * when a job finishes. Every step is idempotent (atomic files, a SOP Instance UID derived from the
 * reportId), so a job interrupted anywhere — crash, SIGKILL, shutdown — is simply run again at the next
 * start. A job that runs out of time or meets a permanent refusal is kept as `failed` with its reason.
 */

export interface ReportWorkerDeps {
  journal: ReportJournal;
  registry: StudyRegistry;
  pacs: PacsClient;
  stow: StowClient;
  lister: InstanceLister;
  audit: AuditTrail;
  log: Logger;
  config: ReportConfig;
  dataDir: string;
  random?: () => number;
}

const NOTIFY_CONCURRENCY = 2;

interface Failure {
  reason: string;
  permanent: boolean;
  retryAfterMs?: number;
}

export class ReportWorker {
  private readonly busyJobs = new Set<string>();
  private readonly busyNotify = new Set<string>();
  private readonly running = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private readonly downloader: PdfDownloader;
  private readonly pacsSink: PacsSink;
  private readonly dirSink: DirSink;
  private readonly notifier?: CriticalNotifier;
  private readonly spoolDir: string;
  private readonly policy: BackoffPolicy;
  private timer: NodeJS.Timeout | undefined;
  private kickScheduled = false;
  private started = false;
  private stopping = false;

  constructor(private readonly deps: ReportWorkerDeps) {
    const c = deps.config;
    this.downloader = new PdfDownloader({ allowedHosts: c.downloadAllowedHosts, maxBytes: c.maxBytes, timeoutMs: c.downloadTimeoutMs });
    this.pacsSink = new PacsSink(deps.pacs, deps.stow);
    this.dirSink = new DirSink(path.join(deps.dataDir, 'reports'));
    this.spoolDir = path.join(deps.dataDir, 'report-spool');
    this.notifier = c.criticalWebhook ? new CriticalNotifier(c.criticalWebhook.url, c.criticalWebhook.secret) : undefined;
    this.policy = { baseMs: c.retryBaseMs, maxMs: c.retryMaxMs, random: deps.random };
  }

  /** Resumes whatever the journal holds pending (a crash or restart left it there) and starts taking new work. */
  async start(): Promise<void> {
    await mkdir(this.dirSink.dir, { recursive: true });
    await mkdir(this.spoolDir, { recursive: true });
    const { journal, log } = this.deps;
    if (!this.notifier) {
      const abandoned = journal.abandonNotifications('CRITICAL_REPORT_WEBHOOK_URL is no longer set');
      if (abandoned > 0) log.warn({ count: abandoned }, 'critical-report notifications left pending cannot be sent: CRITICAL_REPORT_WEBHOOK_URL is not set');
    }
    const counts = journal.counts();
    log.info({ pending: counts.pending, failed: counts.failed, unmatched: counts.unmatched, sinks: this.deps.config.sinks }, 'report worker started');
    if (counts.failed > 0) log.warn({ failed: counts.failed }, 'some reports could not be filed and wait for an operator (see the report jobs CLI)');
    this.started = true;
    journal.onCommitted(() => this.kick());
    this.kick();
  }

  /** Stops taking work and interrupts running jobs; they stay pending in the journal and resume at the next start. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    this.abort.abort(new Error('the gateway is shutting down'));
    await Promise.allSettled([...this.running]);
    await this.notifier?.close();
  }

  /** Looks for due work soon (coalesced). */
  kick(): void {
    if (!this.started || this.stopping || this.kickScheduled) return;
    this.kickScheduled = true;
    setImmediate(() => {
      this.kickScheduled = false;
      this.fill();
    });
  }

  private fill(): void {
    if (this.stopping) return;
    const { journal, config } = this.deps;
    const free = config.concurrency - this.busyJobs.size;
    const freeN = this.notifier ? NOTIFY_CONCURRENCY - this.busyNotify.size : 0;
    // Every slot taken (an intake burst kicks after each commit): nothing to do until a job finishes or the poll.
    if (free <= 0 && freeN <= 0 && this.timer !== undefined) return;
    clearTimeout(this.timer);
    let wait = config.pollMs;
    try {
      const now = Date.now();
      if (free > 0) for (const job of journal.due(now, free, this.busyJobs)) this.run(this.busyJobs, job.reportId, () => this.process(job));
      if (freeN > 0) for (const job of journal.notificationsDue(now, freeN, this.busyNotify)) this.run(this.busyNotify, job.reportId, () => this.notify(job));
      const next = journal.nextDueAt(this.busyJobs, this.busyNotify);
      // Due but not started means every slot is taken: a finishing job kicks, the poll is only a safety net.
      if (next !== undefined && next > now) wait = Math.min(wait, next - now);
    } catch (err) {
      this.deps.log.error({ err }, 'report worker could not read the journal');
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.fill();
    }, Math.max(wait, 1));
    this.timer.unref();
  }

  private run(busy: Set<string>, reportId: string, work: () => Promise<void>): void {
    busy.add(reportId);
    const p: Promise<void> = work()
      .catch((err: unknown) => this.deps.log.error({ err, reportId }, 'report job crashed'))
      .finally(() => {
        busy.delete(reportId);
        this.running.delete(p);
        this.kick();
      });
    this.running.add(p);
  }

  // ---------------------------------------------------------------------------------------------
  // Filing

  private async process(claimed: ReportJob): Promise<void> {
    const { journal } = this.deps;
    const log = this.deps.log.child({ reportId: claimed.reportId, studyId: claimed.studyId, eventId: claimed.eventId });
    try {
      const job = claimed.pdfSha256 ? claimed : await this.fetchPdf(claimed, log);
      await this.file(job, log);
    } catch (err) {
      if (this.stopping) return; // interrupted, not failed: it stays pending
      await this.recordFailure(journal.get(claimed.reportId) ?? claimed, failureOf(err), log);
    }
  }

  private async fetchPdf(job: ReportJob, log: Logger): Promise<ReportJob> {
    const { journal, config } = this.deps;
    const spool = this.spoolPath(job.reportId);
    // A crash after the PDF was renamed into the spool but before the journal said so leaves a complete file.
    let got = await adoptPdf(spool, config.maxBytes);
    if (got) {
      log.info({ bytes: got.bytes }, 'report PDF found in the spool from an interrupted run');
    } else {
      if (!job.presignedUrl) throw new FilingError('no PDF is held and there is no presigned URL left to fetch it', true);
      log.info({ host: hostOf(job.presignedUrl), attempt: job.attempts + 1 }, 'downloading report PDF');
      const d = await this.downloader.download(job.presignedUrl, spool, this.abort.signal);
      log.info({ bytes: d.bytes, host: d.host, redirects: d.redirects || undefined }, 'report PDF downloaded');
      got = { bytes: d.bytes, sha256: d.sha256 };
    }
    const now = Date.now();
    journal.markDownloaded(job.reportId, { ...got, giveUpAt: now + config.filingWindowMs, now });
    return journal.get(job.reportId)!;
  }

  private async file(job: ReportJob, log: Logger): Promise<void> {
    const { journal, registry, audit, config } = this.deps;
    const wantPacs = config.sinks.includes('pacs');
    const wantDir = config.sinks.includes('dir');
    const source = await this.pdfSource(job);
    const studyInstanceUid = registry.studyInstanceUid(job.studyId);

    if (!studyInstanceUid) {
      // Never seen in a study.access_requested: nothing says which DICOM study this is. Keep it on disk.
      await this.dirSink.writePdf(job.reportId, source);
      journal.markSinksDone(job.reportId, [...job.sinksDone, 'dir'], Date.now());
      const note = 'unmatched: the gateway has no StudyInstanceUID for this studyId, filed to the directory only';
      const fresh = journal.get(job.reportId)!;
      await this.dirSink.writeStatus(fresh, { state: 'unmatched', pacsConfigured: wantPacs, hasPdf: true, unmatched: true, lastError: note });
      journal.markFinished(job.reportId, 'unmatched', Date.now(), note);
      audit.record({ action: 'report_filed', studyId: job.studyId, bytes: job.pdfBytes ?? undefined, detail: { reportId: job.reportId, sink: 'dir', unmatched: true } });
      log.warn({ bytes: job.pdfBytes }, 'report for a study the gateway never saw: filed to the directory only (unmatched)');
      await this.dropSpool(job.reportId);
      return;
    }

    const done = new Set(job.sinksDone);
    if (wantDir && !done.has('dir')) {
      await this.dirSink.writePdf(job.reportId, source);
      done.add('dir');
      journal.markSinksDone(job.reportId, [...done], Date.now());
      audit.record({ action: 'report_filed', studyId: job.studyId, studyInstanceUid, bytes: job.pdfBytes ?? undefined, detail: { reportId: job.reportId, sink: 'dir' } });
      await this.dirSink.writeStatus(journal.get(job.reportId)!, { state: 'pending', pacsConfigured: wantPacs, hasPdf: true, unmatched: false });
    }
    if (wantPacs && !done.has('pacs')) {
      const r = await this.pacsSink.file(job, studyInstanceUid, source, this.abort.signal);
      journal.markTarget(job.reportId, { studyInstanceUid, seriesInstanceUid: r.seriesInstanceUid, sopInstanceUid: r.sopInstanceUid, now: Date.now() });
      done.add('pacs');
      journal.markSinksDone(job.reportId, [...done], Date.now());
      this.deps.lister.invalidate(studyInstanceUid);
      audit.record({
        action: 'report_filed',
        studyId: job.studyId,
        studyInstanceUid,
        seriesInstanceUid: r.seriesInstanceUid,
        sopInstanceUid: r.sopInstanceUid,
        bytes: r.bytes,
        detail: { reportId: job.reportId, sink: 'pacs' },
      });
      log.info({ studyInstanceUid, sopInstanceUid: r.sopInstanceUid, bytes: r.bytes }, 'report filed into the PACS');
    } else {
      journal.markTarget(job.reportId, { studyInstanceUid, seriesInstanceUid: job.seriesInstanceUid ?? undefined, sopInstanceUid: job.sopInstanceUid ?? undefined, now: Date.now() });
    }
    const fresh = journal.get(job.reportId)!;
    // The status file first: a crash in between leaves a job that is filed again (idempotent), never a file that lies.
    if (wantDir) await this.dirSink.writeStatus(fresh, { state: 'filed', pacsConfigured: wantPacs, hasPdf: true, unmatched: false, lastError: null });
    journal.markFinished(job.reportId, 'filed', Date.now());
    log.info({ studyInstanceUid, sinks: [...done], attempts: job.attempts + 1 }, 'report filed');
    await this.dropSpool(job.reportId);
  }

  /** Where the PDF is: the spool, or (once filed and the spool is gone) the directory sink's copy. */
  private async pdfSource(job: ReportJob): Promise<string> {
    for (const p of [this.spoolPath(job.reportId), this.dirSink.pdfPath(job.reportId)]) {
      try {
        const s = await stat(p);
        if (job.pdfBytes === null || s.size === job.pdfBytes) return p;
      } catch {
        // not there
      }
    }
    throw new FilingError('the downloaded PDF is no longer on disk (spool and reports directory)', true);
  }

  private async recordFailure(job: ReportJob, f: Failure, log: Logger): Promise<void> {
    const { journal, audit, config } = this.deps;
    const now = Date.now();
    const attempts = job.attempts + 1;
    const stage = job.pdfSha256 ? 'filing' : 'download';
    const decision = f.permanent ? ({ giveUp: true } as const) : nextRetry(attempts, now, job.giveUpAt, this.policy, f.retryAfterMs);
    if ('retryAt' in decision) {
      journal.scheduleRetry(job.reportId, { attempts, nextAt: decision.retryAt, error: f.reason, now });
      log.warn({ stage, attempt: attempts, retryInMs: decision.retryAt - now, reason: f.reason }, 'report attempt failed; will retry');
      return;
    }
    const reason = f.permanent
      ? f.reason
      : `gave up after ${attempts} attempts: the ${stage === 'download' ? 'presigned URL validity window' : 'filing window'} ended; last error: ${f.reason}`;
    if (config.sinks.includes('dir')) {
      // The report text is kept in the directory even when the PDF never came.
      await this.dirSink
        .writeStatus(job, { state: 'failed', pacsConfigured: config.sinks.includes('pacs'), hasPdf: job.sinksDone.includes('dir'), unmatched: false, lastError: reason })
        .catch((err: unknown) => log.error({ err }, 'could not write the report status file'));
    }
    journal.markFailed(job.reportId, { attempts, error: reason, now });
    audit.record({ action: 'report_failed', studyId: job.studyId, studyInstanceUid: job.studyInstanceUid ?? undefined, detail: { reportId: job.reportId, stage, attempts, reason } });
    log.error({ stage, attempts, reason }, 'report could not be filed: kept as failed for an operator');
  }

  // ---------------------------------------------------------------------------------------------
  // Critical notifications

  private async notify(job: ReportJob): Promise<void> {
    const { journal, registry } = this.deps;
    const log = this.deps.log.child({ reportId: job.reportId, studyId: job.studyId, eventId: job.eventId });
    const attempts = job.notifyAttempts + 1;
    try {
      await this.notifier!.send(job, registry.studyInstanceUid(job.studyId) ?? null, this.abort.signal);
      journal.markNotified(job.reportId, attempts, Date.now());
      log.info({ attempts }, 'critical report notification delivered');
    } catch (err) {
      if (this.stopping) return;
      const f = failureOf(err);
      const now = Date.now();
      const decision = f.permanent ? ({ giveUp: true } as const) : nextRetry(attempts, now, job.notifyGiveUpAt ?? now, this.policy, f.retryAfterMs);
      if ('retryAt' in decision) {
        journal.scheduleNotifyRetry(job.reportId, { attempts, nextAt: decision.retryAt, error: f.reason, now });
        log.warn({ attempt: attempts, retryInMs: decision.retryAt - now, reason: f.reason }, 'critical report notification failed; will retry');
      } else {
        journal.markNotifyFailed(job.reportId, { attempts, error: f.reason, now });
        log.error({ attempts, reason: f.reason }, 'critical report notification could not be delivered: kept as failed for an operator');
      }
    }
  }

  // ---------------------------------------------------------------------------------------------

  private spoolPath(reportId: string): string {
    return path.join(this.spoolDir, `${reportId}.pdf`);
  }

  private async dropSpool(reportId: string): Promise<void> {
    await rm(this.spoolPath(reportId), { force: true }).catch(() => undefined);
  }
}

function failureOf(err: unknown): Failure {
  if (err instanceof DownloadError || err instanceof NotifyError) return { reason: err.message, permanent: err.permanent, retryAfterMs: err.retryAfterMs };
  if (err instanceof FilingError) return { reason: err.message, permanent: err.permanent };
  if (err instanceof PacsError) return { reason: err.message, permanent: false };
  const e = err as { code?: string; message?: string };
  return { reason: e?.code ? `${e.code}: ${e.message ?? ''}`.trim() : (e?.message ?? String(err)), permanent: false };
}

/** host:port of a URL, for logs: never its path or query. */
function hostOf(url: string): string | undefined {
  try {
    return new URL(url).host;
  } catch {
    return undefined;
  }
}

/** A complete PDF left in the spool by an interrupted run (it only gets there after a full, checked download). */
async function adoptPdf(file: string, maxBytes: number): Promise<{ bytes: number; sha256: string } | undefined> {
  try {
    await access(file);
  } catch {
    return undefined;
  }
  const { size } = await stat(file);
  if (size < 5 || size > maxBytes) return undefined;
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(5);
    await fh.read(head, 0, 5, 0);
    if (head.toString('latin1') !== '%PDF-') return undefined;
  } finally {
    await fh.close();
  }
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return { bytes: size, sha256: hash.digest('hex') };
}

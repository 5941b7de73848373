import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { PacsClient } from '../pacs/pacs-client.js';
import type { StowClient } from '../pacs/stow.js';
import { encapsulatedPdf, encapsulatedPdfStream } from './encapsulated-pdf.js';
import { copyFileDurable, writeFileDurable } from './durable-files.js';
import { toView, type ReportJob, type ReportState } from './journal.js';

/** A filing failure; `permanent` when retrying cannot help. Messages hold ids and UIDs only. */
export class FilingError extends Error {
  constructor(
    message: string,
    readonly permanent: boolean,
  ) {
    super(message);
    this.name = 'FilingError';
  }
}

/** `pacs` sink: the PDF as a DICOM Encapsulated PDF, stored with STOW-RS into the study it reports on. */
export class PacsSink {
  constructor(
    private readonly pacs: PacsClient,
    private readonly stow: StowClient,
  ) {}

  async file(job: ReportJob, studyInstanceUid: string, pdfPath: string, signal: AbortSignal): Promise<{ sopInstanceUid: string; seriesInstanceUid: string; bytes: number }> {
    const { size } = await stat(pdfPath);
    if (job.pdfBytes !== null && size !== job.pdfBytes) {
      throw new FilingError(`the spooled PDF has ${size} bytes, the download had ${job.pdfBytes}`, true);
    }
    const study = await this.pacs.findStudy(studyInstanceUid, signal);
    // The study was there when Avara read it; it may be in transit or being repaired: worth retrying.
    if (!study) throw new FilingError(`the PACS does not hold study ${studyInstanceUid}`, false);
    const parts = await encapsulatedPdf({ reportId: job.reportId, studyInstanceUid, study, pdfLength: size, createdAt: new Date(job.receivedAt) });
    const result = await this.stow.store(encapsulatedPdfStream(parts, pdfPath), { length: parts.length, studyUid: studyInstanceUid, signal });
    if (!result.stored) {
      const reasons = result.failures.map((f) => f.reason).filter((r) => r !== undefined);
      const why = `the PACS did not store the report (STOW-RS HTTP ${result.status}${reasons.length ? `, failure reason ${reasons.map((r) => `0x${r!.toString(16)}`).join(', ')}` : ''})`;
      const retryable = result.status >= 500 || result.status === 408 || result.status === 429 || result.status < 400;
      throw new FilingError(why, !retryable);
    }
    return { sopInstanceUid: parts.sopInstanceUid, seriesInstanceUid: parts.seriesInstanceUid, bytes: parts.length };
  }
}

/** What `<reportId>.json` says about a report. */
export interface ReportStatusFile {
  reportId: string;
  studyId: string;
  eventId: string;
  studyInstanceUid: string | null;
  isCritical: boolean;
  plainText: string | null;
  unmatched: boolean;
  state: ReportState;
  receivedAt: string;
  updatedAt: string;
  pdf: { file: string; bytes: number; sha256: string } | null;
  pacs: { status: 'filed' | 'pending' | 'failed' | 'not_configured' | 'not_applicable'; sopInstanceUid?: string; seriesInstanceUid?: string };
  lastError: string | null;
}

/**
 * `dir` sink: DATA_DIR/reports/<reportId>.pdf and <reportId>.json (ids, isCritical, plainText, filing
 * status). Also where a report for an unknown study goes, whatever REPORT_SINKS says. Both files are
 * replaced atomically.
 */
export class DirSink {
  constructor(readonly dir: string) {}

  pdfPath(reportId: string): string {
    return path.join(this.dir, `${reportId}.pdf`);
  }

  jsonPath(reportId: string): string {
    return path.join(this.dir, `${reportId}.json`);
  }

  async writePdf(reportId: string, from: string): Promise<void> {
    if (path.resolve(from) === path.resolve(this.pdfPath(reportId))) return;
    await copyFileDurable(from, this.pdfPath(reportId));
  }

  async writeStatus(job: ReportJob, opts: { state: ReportState; pacsConfigured: boolean; hasPdf: boolean; unmatched: boolean; lastError?: string | null }): Promise<void> {
    const view = toView(job);
    const pacsStatus: ReportStatusFile['pacs']['status'] = opts.unmatched
      ? 'not_applicable'
      : !opts.pacsConfigured
        ? 'not_configured'
        : job.sinksDone.includes('pacs')
          ? 'filed'
          : opts.state === 'failed'
            ? 'failed'
            : 'pending';
    const status: ReportStatusFile = {
      reportId: job.reportId,
      studyId: job.studyId,
      eventId: job.eventId,
      studyInstanceUid: job.studyInstanceUid,
      isCritical: job.isCritical,
      plainText: job.plainText,
      unmatched: opts.unmatched,
      state: opts.state,
      receivedAt: view.receivedAt,
      updatedAt: new Date().toISOString(),
      pdf: opts.hasPdf && job.pdfBytes !== null && job.pdfSha256 ? { file: `${job.reportId}.pdf`, bytes: job.pdfBytes, sha256: job.pdfSha256 } : null,
      pacs: {
        status: pacsStatus,
        ...(pacsStatus === 'filed' && job.sopInstanceUid ? { sopInstanceUid: job.sopInstanceUid } : {}),
        ...(pacsStatus === 'filed' && job.seriesInstanceUid ? { seriesInstanceUid: job.seriesInstanceUid } : {}),
      },
      lastError: opts.lastError === undefined ? job.lastError : opts.lastError,
    };
    await writeFileDurable(this.jsonPath(job.reportId), `${JSON.stringify(status, null, 2)}\n`);
  }
}

import { AppError } from '../../http/errors.js';
import type { AcceptResult, ReportDelivery } from '../../reports/journal.js';
import type { ReportDeliveredEvent, ReportDeliveredResponse } from '../event-schemas.js';
import type { EventHandler } from './handler.js';

export interface ReportDeliveredDeps {
  journal: { accept(delivery: ReportDelivery): Promise<AcceptResult> };
  /** A critical report was journaled for the first time (metric). */
  onCritical?: (info: { eventId: string; reportId: string; studyId: string }) => void;
}

/**
 * report.delivered: journal durably, then acknowledge. Avara does not send a report again once it got
 * `{success: true}`, so the answer waits for the journal's commit; when the journal cannot take it the
 * request fails with 503 and Avara retries. Download and filing happen later in the report worker.
 *
 * The answer is not kept in the webhook delivery log (`final: false`): the journal is the record, keyed by
 * reportId, and a repeated delivery (same webhook id or same reportId) is answered from it with the same
 * `{success: true}` without filing twice. That keeps intake at one write per event.
 */
export function reportDeliveredHandler(deps: ReportDeliveredDeps): EventHandler<ReportDeliveredEvent> {
  return async (event, ctx) => {
    const { reportId, studyId, isCritical, presignedUrl, plainText } = event.data;
    const ids = { webhookId: ctx.webhookId, eventId: event.id, reportId, studyId };
    let result: AcceptResult;
    try {
      result = await deps.journal.accept({ eventId: event.id, reportId, studyId, isCritical, presignedUrl, plainText });
    } catch (err) {
      ctx.log.error({ ...ids, err }, 'report could not be journaled: answering 503 so that Avara retries');
      throw new AppError(503, 'journal_unavailable', 'the report could not be recorded; retry later', { 'retry-after': '5' });
    }
    if (result.created) {
      ctx.log.info({ ...ids, isCritical, hasPlainText: plainText !== undefined, downloadHost: hostOf(presignedUrl) }, 'report journaled');
      if (isCritical) {
        ctx.log.warn(ids, 'critical report received');
        deps.onCritical?.({ eventId: event.id, reportId, studyId });
      }
    } else {
      ctx.log.info({ ...ids, state: result.state }, 'repeated report delivery: already journaled, acknowledged again');
    }
    const body: ReportDeliveredResponse = { success: true };
    return { status: 200, body, final: false, outcome: result.created ? 'journaled' : 'duplicate' };
  };
}

function hostOf(url: string): string | undefined {
  try {
    return new URL(url).host;
  } catch {
    return undefined;
  }
}

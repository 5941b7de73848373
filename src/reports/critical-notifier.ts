import { discard, outboundRequest } from './outbound-http.js';
import { sign } from '../webhooks/signature.js';
import { parseRetryAfter } from './backoff.js';
import type { ReportJob } from './journal.js';

/**
 * Tells the hospital that a critical report arrived: a POST to CRITICAL_REPORT_WEBHOOK_URL signed the
 * Standard Webhooks way (webhook-id, webhook-timestamp, webhook-signature with CRITICAL_REPORT_WEBHOOK_SECRET).
 * The message carries ids and UIDs only: no report text, no patient data, no presigned URL. Its webhook-id
 * is the same on every retry, so the receiver can drop repeats.
 */

export interface CriticalMessage {
  type: 'report.critical';
  timestamp: string;
  data: { reportId: string; studyId: string; studyInstanceUid: string | null; eventId: string; isCritical: true; receivedAt: string };
}

export class NotifyError extends Error {
  constructor(
    message: string,
    readonly permanent: boolean,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'NotifyError';
  }
}

export class CriticalNotifier {
  private readonly host: string;

  constructor(
    private readonly url: string,
    private readonly secret: string,
    private readonly timeoutMs = 10_000,
  ) {
    this.host = new URL(url).host;
  }

  static message(job: ReportJob, studyInstanceUid: string | null): { id: string; body: string } {
    const receivedAt = new Date(job.receivedAt).toISOString();
    const msg: CriticalMessage = {
      type: 'report.critical',
      timestamp: receivedAt,
      data: { reportId: job.reportId, studyId: job.studyId, studyInstanceUid, eventId: job.eventId, isCritical: true, receivedAt },
    };
    return { id: `msg_critical_${job.reportId}`, body: JSON.stringify(msg) };
  }

  async send(job: ReportJob, studyInstanceUid: string | null, signal: AbortSignal): Promise<void> {
    const { id, body } = CriticalNotifier.message(job, studyInstanceUid);
    const ts = Math.floor(Date.now() / 1000);
    let res;
    try {
      res = await outboundRequest(new URL(this.url), {
        method: 'POST',
        idleTimeoutMs: this.timeoutMs,
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.timeoutMs)]),
        headers: {
          'content-type': 'application/json',
          'webhook-id': id,
          'webhook-timestamp': String(ts),
          'webhook-signature': sign(this.secret, id, ts, body),
        },
        body,
      });
    } catch (err) {
      if (signal.aborted) throw err;
      const code = (err as { code?: string; name?: string })?.code ?? (err as { name?: string })?.name;
      throw new NotifyError(`${this.host} could not be reached${code ? ` (${code})` : ''}`, false);
    }
    await discard(res);
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return;
    // Standard Webhooks: 410 Gone asks the sender to stop.
    throw new NotifyError(`${this.host} answered HTTP ${status}`, status === 410, parseRetryAfter(res.headers['retry-after']));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

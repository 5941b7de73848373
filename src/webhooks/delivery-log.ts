import type { Db } from '../store/database.js';

export interface StoredAnswer {
  status: number;
  body: unknown;
}

/**
 * Remembers the answer given to each webhook id, so a retried delivery gets the same answer and is
 * processed once. In-flight duplicates wait for the first one instead of running twice.
 */
export class DeliveryLog {
  private readonly insert;
  private readonly select;
  private readonly prune;
  private readonly inFlight = new Map<string, Promise<StoredAnswer>>();

  constructor(
    db: Db,
    private readonly retentionMs = 7 * 24 * 3600 * 1000,
  ) {
    this.insert = db.prepare(
      'INSERT OR IGNORE INTO webhook_deliveries (webhook_id, event_type, status, response, received_at) VALUES (?, ?, ?, ?, ?)',
    );
    this.select = db.prepare('SELECT status, response FROM webhook_deliveries WHERE webhook_id = ?');
    this.prune = db.prepare('DELETE FROM webhook_deliveries WHERE received_at < ?');
  }

  previous(webhookId: string): StoredAnswer | undefined {
    const row = this.select.get(webhookId) as { status: number; response: string } | undefined;
    return row ? { status: row.status, body: JSON.parse(row.response) } : undefined;
  }

  remember(webhookId: string, eventType: string, answer: StoredAnswer, now = Date.now()): void {
    this.insert.run(webhookId, eventType, answer.status, JSON.stringify(answer.body), now);
  }

  /**
   * Runs `work` once per webhook id. `work` decides whether its answer is final (kept for replays) or
   * transient (a PACS outage: the sender's retry should try again).
   */
  async once(webhookId: string, eventType: string, work: () => Promise<StoredAnswer & { final: boolean }>): Promise<StoredAnswer & { replayed: boolean }> {
    const stored = this.previous(webhookId);
    if (stored) return { ...stored, replayed: true };
    const running = this.inFlight.get(webhookId);
    if (running) return { ...(await running), replayed: true };
    const p = work().then((answer) => {
      if (answer.final) this.remember(webhookId, eventType, answer);
      return { status: answer.status, body: answer.body };
    });
    this.inFlight.set(webhookId, p);
    try {
      return { ...(await p), replayed: false };
    } finally {
      this.inFlight.delete(webhookId);
    }
  }

  pruneOld(now = Date.now()): number {
    return this.prune.run(now - this.retentionMs).changes;
  }
}

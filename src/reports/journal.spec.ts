import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type Db } from '../store/database.js';
import { getJob, jobCounts, listJobs, ReportJournal, retryJob, type ReportDelivery } from './journal.js';

let dir: string;
let db: Db;
let journal: ReportJournal;
let commits: number;

const hex = (n: number) => n.toString(16).padStart(32, '0');
const delivery = (n: number, over: Partial<ReportDelivery> = {}): ReportDelivery => ({
  eventId: `whe_${hex(n)}`,
  reportId: `rep_${hex(n)}`,
  studyId: `stu_${hex(n)}`,
  isCritical: false,
  presignedUrl: `https://reports.example/r${n}.pdf?X-Amz-Signature=secret${n}`,
  plainText: `Findings ${n}`,
  ...over,
});

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'avara-journal-'));
  db = openDatabase(dir);
  journal = new ReportJournal(db, { downloadWindowMs: 3600_000, notifyCritical: true });
  commits = 0;
  journal.onCommitted(() => commits++);
});
afterEach(() => {
  journal.close();
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('ReportJournal intake', () => {
  it('commits concurrent deliveries together and answers each once its row is on disk', async () => {
    const results = await Promise.all(Array.from({ length: 300 }, (_, i) => journal.accept(delivery(i))));
    expect(results.every((r) => r.created && r.state === 'pending')).toBe(true);
    expect(commits).toBe(1); // one transaction, one fsync, for all 300
    journal.close();
    db.close();
    db = openDatabase(dir); // what a restart sees
    expect(jobCounts(db).pending).toBe(300);
  });

  it('journals a report once however often it is delivered, and counts the deliveries', async () => {
    const d = delivery(1);
    const [a, b] = await Promise.all([journal.accept(d), journal.accept({ ...d, eventId: `whe_${hex(99)}` })]);
    const c = await journal.accept(d);
    expect([a.created, b.created, c.created]).toEqual([true, false, false]);
    const job = journal.get(d.reportId)!;
    expect(job.deliveries).toBe(3);
    expect(job.eventId).toBe(d.eventId);
    expect(jobCounts(db).pending).toBe(1);
  });

  it('takes the fresh presigned URL of a repeated delivery while the PDF is not downloaded, and revives a failed download', async () => {
    const d = delivery(2);
    await journal.accept(d);
    journal.markFailed(d.reportId, { attempts: 9, error: 'the presigned URL expired', now: Date.now() });
    await journal.accept({ ...d, presignedUrl: 'https://reports.example/fresh.pdf' });
    const revived = journal.get(d.reportId)!;
    expect(revived.state).toBe('pending');
    expect(revived.attempts).toBe(0);
    expect(revived.presignedUrl).toBe('https://reports.example/fresh.pdf');

    journal.markDownloaded(d.reportId, { bytes: 10, sha256: 'ab', giveUpAt: Date.now() + 1000, now: Date.now() });
    await journal.accept({ ...d, presignedUrl: 'https://reports.example/later.pdf' });
    expect(journal.get(d.reportId)!.presignedUrl).toBeNull(); // cleared once downloaded, never restored
  });

  it('queues a notification for critical reports only', async () => {
    await journal.accept(delivery(3, { isCritical: true }));
    await journal.accept(delivery(4));
    expect(journal.get(`rep_${hex(3)}`)!.notifyState).toBe('pending');
    expect(journal.get(`rep_${hex(4)}`)!.notifyState).toBe('none');
    expect(jobCounts(db).criticalNotifications).toEqual({ pending: 1, sent: 0, failed: 0 });
  });

  it('rejects (so the webhook fails and Avara retries) when the row cannot be written, without failing its neighbours', async () => {
    db.exec(`CREATE TRIGGER refuse_one BEFORE INSERT ON report_jobs WHEN NEW.report_id = 'rep_${hex(7)}' BEGIN SELECT RAISE(ABORT, 'disk trouble'); END;`);
    const results = await Promise.allSettled([6, 7, 8].map((n) => journal.accept(delivery(n))));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(jobCounts(db).pending).toBe(2);
  });

  it('writes what was queued before closing, and refuses intake after', async () => {
    const queued = [journal.accept(delivery(10)), journal.accept(delivery(11))];
    journal.close();
    expect((await Promise.all(queued)).map((r) => r.created)).toEqual([true, true]);
    await expect(journal.accept(delivery(9))).rejects.toThrow(/closed/);
    expect(jobCounts(db).pending).toBe(2);
  });
});

describe('ReportJournal for the worker', () => {

  it('hands out due jobs oldest first, skipping busy ones, and says when the next one is due', async () => {
    for (const n of [1, 2, 3]) await journal.accept(delivery(n));
    const now = Date.now();
    journal.scheduleRetry(`rep_${hex(3)}`, { attempts: 1, nextAt: now + 60_000, error: 'x', now });
    const busy = new Set([`rep_${hex(1)}`]);
    expect(journal.due(now + 1, 10, busy).map((j) => j.reportId)).toEqual([`rep_${hex(2)}`]);
    expect(journal.nextDueAt(new Set([`rep_${hex(1)}`, `rep_${hex(2)}`]), new Set())).toBe(now + 60_000);
  });
});

describe('operator API', () => {
  it('lists jobs without the presigned URL or the report text', async () => {
    await journal.accept(delivery(1));
    const [view] = listJobs(db);
    expect(view).toMatchObject({ reportId: `rep_${hex(1)}`, state: 'pending', stage: 'download', hasPlainText: true });
    const text = JSON.stringify(listJobs(db, { state: 'pending' }));
    expect(text).not.toMatch(/secret1|Findings|reports\.example/);
    expect(listJobs(db, { state: 'failed' })).toEqual([]);
  });

  it('puts a failed job back in the queue, due now, and refiles a filed one only when forced', async () => {
    const d = delivery(5, { isCritical: true });
    await journal.accept(d);
    const t = Date.now();
    journal.markFailed(d.reportId, { attempts: 12, error: 'gave up', now: t });
    journal.markNotifyFailed(d.reportId, { attempts: 3, error: 'HTTP 500', now: t });
    expect(retryJob(db, d.reportId, { now: t + 10 })).toEqual({ ok: true, previousState: 'failed', notificationRetried: true });
    const j = journal.get(d.reportId)!;
    expect(j).toMatchObject({ state: 'pending', attempts: 0, nextAttemptAt: t + 10, notifyState: 'pending' });
    expect(j.giveUpAt).toBeGreaterThanOrEqual(t + 3600_000);

    journal.markSinksDone(d.reportId, ['dir', 'pacs'], t);
    journal.markFinished(d.reportId, 'filed', t);
    expect(retryJob(db, d.reportId)).toMatchObject({ ok: false, reason: 'already_filed' });
    expect(retryJob(db, d.reportId, { force: true })).toMatchObject({ ok: true, previousState: 'filed' });
    expect(journal.get(d.reportId)).toMatchObject({ state: 'pending', sinksDone: [] });
    expect(retryJob(db, 'rep_nope')).toMatchObject({ ok: false, reason: 'not_found' });
    expect(getJob(db, d.reportId)?.state).toBe('pending');
  });
});

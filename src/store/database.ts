import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

export type Db = Database.Database;

/**
 * The gateway's embedded store under DATA_DIR: which Avara study is which DICOM study, the answers given
 * to webhook ids (replay), and whatever later features journal. WAL + synchronous=FULL: a row that
 * a response depended on is on disk before the response is sent.
 */
const MIGRATIONS: string[] = [
  `CREATE TABLE studies (
     study_id TEXT PRIMARY KEY,
     study_instance_uid TEXT NOT NULL,
     first_seen INTEGER NOT NULL,
     last_seen INTEGER NOT NULL
   );
   CREATE INDEX studies_by_uid ON studies(study_instance_uid);
   CREATE TABLE webhook_deliveries (
     webhook_id TEXT PRIMARY KEY,
     event_type TEXT NOT NULL,
     status INTEGER NOT NULL,
     response TEXT NOT NULL,
     received_at INTEGER NOT NULL
   );
   CREATE INDEX webhook_deliveries_by_time ON webhook_deliveries(received_at);`,
  // The audit trail is append-only: the database itself refuses to change or remove a row.
  `CREATE TABLE audit_events (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     at INTEGER NOT NULL,
     action TEXT NOT NULL,
     study_id TEXT,
     study_instance_uid TEXT,
     series_instance_uid TEXT,
     sop_instance_uid TEXT,
     webhook_id TEXT,
     client TEXT,
     status INTEGER,
     bytes INTEGER,
     detail TEXT
   );
   CREATE INDEX audit_by_study_uid ON audit_events(study_instance_uid, at);
   CREATE INDEX audit_by_study_id ON audit_events(study_id, at);
   CREATE INDEX audit_by_time ON audit_events(at);
   CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit_events BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
   CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit_events BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;`,
  // report.delivered jobs (src/reports/journal.ts): one row per reportId, written before Avara gets its answer.
  `CREATE TABLE report_jobs (
     report_id TEXT PRIMARY KEY,
     event_id TEXT NOT NULL,
     study_id TEXT NOT NULL,
     is_critical INTEGER NOT NULL,
     plain_text TEXT,
     presigned_url TEXT,
     received_at INTEGER NOT NULL,
     deliveries INTEGER NOT NULL DEFAULT 1,
     state TEXT NOT NULL CHECK (state IN ('pending', 'filed', 'unmatched', 'failed')),
     attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt_at INTEGER NOT NULL,
     give_up_at INTEGER NOT NULL,
     last_error TEXT,
     pdf_bytes INTEGER,
     pdf_sha256 TEXT,
     downloaded_at INTEGER,
     study_instance_uid TEXT,
     series_instance_uid TEXT,
     sop_instance_uid TEXT,
     sinks_done TEXT NOT NULL DEFAULT '',
     filed_at INTEGER,
     updated_at INTEGER NOT NULL,
     notify_state TEXT NOT NULL DEFAULT 'none' CHECK (notify_state IN ('none', 'pending', 'sent', 'failed')),
     notify_attempts INTEGER NOT NULL DEFAULT 0,
     notify_next_at INTEGER,
     notify_give_up_at INTEGER,
     notify_error TEXT
   );
   CREATE INDEX report_jobs_due ON report_jobs(state, next_attempt_at);
   CREATE INDEX report_jobs_notify_due ON report_jobs(notify_state, notify_next_at);
   CREATE INDEX report_jobs_by_study ON report_jobs(study_id);`,
];

export function openDatabase(dataDir: string): Db {
  mkdirSync(dataDir, { recursive: true });
  const db = new Database(path.join(dataDir, 'gateway.sqlite'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  migrate(db);
  return db;
}

function migrate(db: Db): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

import type { Db } from './database.js';

/** Which DICOM StudyInstanceUID each Avara studyId names; report.delivered carries only the studyId. */
export class StudyRegistry {
  private readonly recordTx;
  private readonly lookup;

  constructor(db: Db) {
    const upsert = db.prepare(
      `INSERT INTO studies (study_id, study_instance_uid, first_seen, last_seen) VALUES (?, ?, ?, ?)
       ON CONFLICT(study_id) DO UPDATE SET study_instance_uid = excluded.study_instance_uid, last_seen = excluded.last_seen`,
    );
    this.lookup = db.prepare('SELECT study_instance_uid AS uid FROM studies WHERE study_id = ?');
    this.recordTx = db.transaction((studyId: string, uid: string, now: number) => {
      const previous = this.studyInstanceUid(studyId);
      upsert.run(studyId, uid, now, now);
      return previous;
    });
  }

  /** Records the pair durably; returns the UID it previously named when that was different. */
  record(studyId: string, studyInstanceUid: string, now = Date.now()): { changedFrom?: string } {
    const previous = this.recordTx(studyId, studyInstanceUid, now);
    return previous && previous !== studyInstanceUid ? { changedFrom: previous } : {};
  }

  studyInstanceUid(studyId: string): string | undefined {
    return (this.lookup.get(studyId) as { uid: string } | undefined)?.uid;
  }
}

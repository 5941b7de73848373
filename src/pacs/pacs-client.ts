import type { Readable } from 'node:stream';

/** What the gateway needs from an archive. Implementations: DICOMweb (any archive), Orthanc (native REST). */
export interface PacsClient {
  readonly flavor: 'dicomweb' | 'orthanc';
  /** Resolves when the archive answers an authenticated request. */
  ping(signal?: AbortSignal): Promise<void>;
  /** Study-level attributes, or undefined when the archive does not hold the study. */
  findStudy(studyUid: string, signal?: AbortSignal): Promise<StudyRecord | undefined>;
  /** Every instance of the study (all pages); an empty list when the archive does not hold it. */
  listInstances(studyUid: string, signal?: AbortSignal): Promise<InstanceRef[]>;
  /** The stored Part 10 bytes of one instance, streamed. Rejects with PacsError('not_found') when absent. */
  openInstance(ref: InstanceLocator, signal?: AbortSignal): Promise<InstanceStream>;
  /**
   * SOP Class and transfer syntax of one instance, where the archive tells them more cheaply than reading
   * the object's header (Orthanc: its per-instance metadata). Optional; undefined when it does not know.
   */
  describeInstance?(ref: InstanceLocator, signal?: AbortSignal): Promise<{ sopClassUid?: string; transferSyntaxUid?: string } | undefined>;
}

export interface InstanceLocator {
  studyUid: string;
  seriesUid: string;
  sopUid: string;
  /** The archive's own id for the object, when it has one (Orthanc); a hint, never trusted alone. */
  pacsId?: string;
}

export interface InstanceRef extends InstanceLocator {
  sopClassUid?: string;
  transferSyntaxUid?: string;
  seriesDescription?: string;
  instanceNumber?: number;
  /** NumberOfFrames (0028,0008), when the listing gives it: tells a single picture from a cine loop. */
  numberOfFrames?: number;
  /** The series' Modality, when the listing gives it: which series may hold media (documents, photos, video). */
  modality?: string;
  /** Stored size in bytes, when the archive lists it. */
  size?: number;
}

/** DICOM JSON (PS3.18 F.2) of the study, as the archive returned it: patient/study attributes for filing. */
export type StudyRecord = Record<string, { vr: string; Value?: unknown[] }>;

export interface InstanceStream {
  body: Readable;
  /** Total bytes, when the archive declared it. */
  length?: number;
}

export type PacsFailure = 'unreachable' | 'timeout' | 'unauthorized' | 'not_found' | 'rejected' | 'bad_response';

/** A failure talking to the archive. `message` is ours and safe to show; the archive's body is never included. */
export class PacsError extends Error {
  constructor(
    readonly kind: PacsFailure,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'PacsError';
  }
}

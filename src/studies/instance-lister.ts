import NodeCache from 'node-cache';
import type { InstanceRef, PacsClient } from '../pacs/pacs-client.js';

/**
 * Lists a study's instances for link issuing. Concurrent requests for one study share one PACS lookup,
 * and a finished listing is reused for a short window (STUDY_CACHE_SECONDS) unless something new is stored
 * in the study, which calls invalidate().
 */
export class InstanceLister {
  private readonly inFlight = new Map<string, Promise<InstanceRef[]>>();
  private readonly cache: NodeCache | undefined;
  private generation = new Map<string, number>();

  constructor(
    private readonly pacs: PacsClient,
    cacheSeconds: number,
  ) {
    this.cache = cacheSeconds > 0 ? new NodeCache({ stdTTL: cacheSeconds, checkperiod: Math.max(1, cacheSeconds), useClones: false }) : undefined;
  }

  list(studyUid: string, timeoutMs: number): Promise<InstanceRef[]> {
    const cached = this.cache?.get<InstanceRef[]>(studyUid);
    if (cached) return Promise.resolve(cached);
    const running = this.inFlight.get(studyUid);
    if (running) return running;
    const gen = this.generation.get(studyUid) ?? 0;
    const p = this.pacs
      .listInstances(studyUid, AbortSignal.timeout(timeoutMs))
      .then((refs) => {
        // A store that happened while we were listing may be missing from this answer: don't keep it.
        if (refs.length > 0 && (this.generation.get(studyUid) ?? 0) === gen) this.cache?.set(studyUid, refs);
        return refs;
      })
      .finally(() => this.inFlight.delete(studyUid));
    this.inFlight.set(studyUid, p);
    return p;
  }

  invalidate(studyUid: string): void {
    this.cache?.del(studyUid);
    this.generation.set(studyUid, (this.generation.get(studyUid) ?? 0) + 1);
    this.inFlight.delete(studyUid);
  }

  close(): void {
    this.cache?.close();
  }
}

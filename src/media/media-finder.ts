import type { Logger } from 'pino';
import type { InstanceRef, PacsClient } from '../pacs/pacs-client.js';
import { ByteReader } from './byte-reader.js';
import { Tags, decimal, text, walkTo } from './dicom-walker.js';
import { classifyMedia, mayHoldMedia, mediaFileName, type MediaKind } from './media-kind.js';

/**
 * Finds the media objects of a study from its instance listing. What the listing says (SOP Class,
 * transfer syntax, frames, series description) often suffices. Where it does not — Orthanc's REST listing
 * has no SOP Class or transfer syntax, its QIDO no transfer syntax, a document may have no series
 * description to name it by — the instance is looked up: the archive's cheap description when it has one
 * (PacsClient.describeInstance), else the object's header (its first few KB, then the request is dropped).
 * Only instances that may be media are looked up (photo/video classes, or any instance of a series whose
 * modality may hold media); those facts never change, so they are remembered.
 *
 * A study of thousands of secondary captures must not cost thousands of lookups: a series (per SOP Class)
 * of more than SMALL_GROUP instances is probed at its first, middle and last instance, and looked at whole
 * only if a probe is media. At most `maxLookups` lookups per study; what is left is reported unresolved.
 */

export interface MediaObject {
  ref: InstanceRef;
  kind: MediaKind;
  fileName: string;
}

export interface FoundMedia {
  media: MediaObject[];
  /** Media objects the gateway does not serve (e.g. MPEG-2 or HEVC video), with the reason. */
  excluded: Array<{ ref: InstanceRef; reason: string }>;
  /** Objects that may be media but could not be looked up (time, budget or errors): left out. */
  unresolved: number;
  /** Lookups made for this answer (archive descriptions and header reads). */
  lookups: number;
}

interface Facts {
  sopClassUid?: string;
  transferSyntaxUid?: string;
  numberOfFrames?: number;
  seriesDescription?: string;
  documentTitle?: string;
  /** The object's header was read: nothing more to learn. */
  header?: boolean;
}

export interface MediaFinderOptions {
  /** Lookups in flight at once. */
  concurrency?: number;
  /** Lookups for one study, at most. */
  maxLookups?: number;
  /** Instances whose facts are remembered. */
  maxRemembered?: number;
}

const SMALL_GROUP = 32;

export class MediaFinder {
  private readonly facts = new Map<string, Facts>();
  /** Large series whose probes held no media, with their size then: not probed again unless they change. */
  private readonly plainSeries = new Map<string, number>();

  constructor(
    private readonly pacs: PacsClient,
    private readonly log: Logger,
    private readonly opts: MediaFinderOptions = {},
  ) {}

  /** Resolves with what was found when `signal` aborts (a deadline), the rest counted as unresolved. */
  async find(refs: InstanceRef[], signal?: AbortSignal): Promise<FoundMedia> {
    const result: Array<{ ref: InstanceRef; kind: MediaKind; facts?: Facts }> = [];
    const excluded: FoundMedia['excluded'] = [];
    const groups = new Map<string, InstanceRef[]>();
    const take = (ref: InstanceRef, facts: Facts | undefined): boolean => {
      const c = classifyMedia({ ...ref, ...facts });
      if (c && 'excluded' in c) excluded.push({ ref, reason: c.excluded });
      else if (c && 'kind' in c) result.push({ ref, kind: c.kind, facts });
      return c !== undefined && !('needsTransferSyntax' in c);
    };
    for (const ref of refs) {
      const known = this.facts.get(keyOf(ref));
      if (!this.needsLookup(ref, known)) {
        take(ref, known);
        continue;
      }
      const g = `${ref.seriesUid}|${ref.sopClassUid ?? ''}`;
      const list = groups.get(g) ?? groups.set(g, []).get(g)!;
      list.push(ref);
    }

    const budget = { left: this.opts.maxLookups ?? 2000, used: 0, unresolved: 0 };
    const lookUp = async (ref: InstanceRef): Promise<boolean> => {
      if (signal?.aborted || budget.left <= 0) {
        budget.unresolved++;
        return false;
      }
      budget.left--;
      budget.used++;
      try {
        return take(ref, await this.lookup(ref, signal));
      } catch (err) {
        budget.unresolved++;
        if (!signal?.aborted) this.log.warn({ sopInstanceUid: ref.sopUid, err: err instanceof Error ? err.message : String(err) }, 'media check: instance could not be looked up; left out of mediaUrls');
        return false;
      }
    };

    // Small groups whole, big ones by probes first; a big group whose probes hold no media is skipped.
    const first: InstanceRef[] = [];
    const big: Array<{ key: string; size: number; rest: InstanceRef[]; probes: InstanceRef[] }> = [];
    for (const [group, list] of groups) {
      if (list.length <= SMALL_GROUP) {
        first.push(...list);
        continue;
      }
      const key = `${list[0]!.studyUid}|${group}`;
      if (this.plainSeries.get(key) === list.length) continue;
      const probes = [...new Set([list[0]!, list[list.length >> 1]!, list[list.length - 1]!])];
      first.push(...probes);
      big.push({ key, size: list.length, probes, rest: list.filter((r) => !probes.includes(r)) });
    }
    const media = new Set<InstanceRef>();
    await pool(first, this.opts.concurrency ?? 8, async (ref) => {
      if (await lookUp(ref)) media.add(ref);
    });
    const second = big.filter((g) => g.probes.some((p) => media.has(p))).flatMap((g) => g.rest);
    const plain = big.filter((g) => !g.probes.some((p) => media.has(p)) && g.probes.every((p) => this.facts.has(keyOf(p))));
    // Next time the probes are known and out of the group: a series unchanged since then has `size - probes` left.
    for (const g of plain) this.rememberPlain(g.key, g.size - g.probes.length);
    if (plain.length > 0) this.log.debug({ series: plain.length }, 'media check: large series without media in their probes were not looked at further');
    await pool(second, this.opts.concurrency ?? 8, async (ref) => void (await lookUp(ref)));

    const order = new Map(refs.map((r, i) => [r, i]));
    result.sort((a, b) => order.get(a.ref)! - order.get(b.ref)!);
    const used = new Map<string, number>();
    const found = result.map(({ ref, kind, facts }) => {
      let fileName = mediaFileName(kind, { seriesDescription: ref.seriesDescription ?? facts?.seriesDescription, documentTitle: facts?.documentTitle, instanceNumber: ref.instanceNumber });
      const n = (used.get(fileName) ?? 0) + 1;
      used.set(fileName, n);
      if (n > 1) fileName = fileName.replace(/(\.[a-z0-9]+)$/, ` (${n})$1`);
      return { ref, kind, fileName };
    });
    return { media: found, excluded, unresolved: budget.unresolved, lookups: budget.used };
  }

  /** Whether the listing (and what is remembered) leaves this instance's media kind or name open. */
  private needsLookup(ref: InstanceRef, known: Facts | undefined): boolean {
    if (known?.header) return false;
    const facts = { ...ref, ...known };
    const c = classifyMedia(facts);
    if (c && 'needsTransferSyntax' in c) return true;
    if (c && 'kind' in c) return c.kind === 'pdf' && !facts.seriesDescription && !facts.documentTitle;
    // Nothing said about the instance at all: worth a look only in a series that may hold media.
    return c === undefined && facts.sopClassUid === undefined && facts.transferSyntaxUid === undefined && mayHoldMedia(ref.modality);
  }

  private async lookup(ref: InstanceRef, signal?: AbortSignal): Promise<Facts> {
    let facts: Facts = { ...this.facts.get(keyOf(ref)) };
    if (this.pacs.describeInstance && (facts.sopClassUid ?? ref.sopClassUid) === undefined) {
      facts = { ...facts, ...(await this.pacs.describeInstance(ref, signal)) };
    }
    if (this.needsLookup(ref, facts)) facts = { ...facts, ...(await this.readHeader(ref, signal)), header: true };
    this.remember(keyOf(ref), facts);
    return facts;
  }

  private async readHeader(ref: InstanceRef, signal?: AbortSignal): Promise<Facts> {
    const file = await this.pacs.openInstance(ref, signal);
    const reader = new ByteReader(file.body);
    try {
      const wanted = new Set<number>([Tags.SpecificCharacterSet, Tags.SOPClassUID, Tags.SeriesDescription, Tags.DocumentTitle, Tags.NumberOfFrames]);
      const w = await walkTo(reader, new Set([Tags.EncapsulatedDocument, Tags.PixelData]), wanted);
      return {
        sopClassUid: text(w.values, Tags.SOPClassUID),
        transferSyntaxUid: w.transferSyntaxUid,
        numberOfFrames: decimal(w.values, Tags.NumberOfFrames),
        seriesDescription: text(w.values, Tags.SeriesDescription),
        documentTitle: text(w.values, Tags.DocumentTitle),
      };
    } finally {
      await reader.close().catch(() => undefined);
    }
  }

  private rememberPlain(key: string, size: number): void {
    this.plainSeries.set(key, size);
    while (this.plainSeries.size > 10_000) this.plainSeries.delete(this.plainSeries.keys().next().value!);
  }

  private remember(key: string, facts: Facts): void {
    this.facts.delete(key);
    this.facts.set(key, facts);
    const max = this.opts.maxRemembered ?? 50_000;
    while (this.facts.size > max) this.facts.delete(this.facts.keys().next().value!);
  }
}

function keyOf(ref: InstanceRef): string {
  return `${ref.studyUid}|${ref.seriesUid}|${ref.sopUid}|${ref.pacsId ?? ''}`;
}

async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { InstanceLocator, PacsClient } from '../pacs/pacs-client.js';
import { ByteReader } from './byte-reader.js';
import { Tags, decimal, nextFragment, text, walkTo, type Walked } from './dicom-walker.js';
import { annexBToFmp4, type VideoHints } from './h264/annexb-to-fmp4.js';
import { JpegInspector, MediaFormatError, Mp4Inspector, PdfInspector, type Inspector } from './inspectors.js';
import { MIME_TYPES, classifyMedia, mediaFileName, type MediaKind } from './media-kind.js';

/**
 * Opens a media object for serving, as the file a browser opens:
 *
 * - stored bytes (the PDF document, the JPEG frame, an MP4 file stored as is): streamed from the DICOM
 *   value with the pad byte left out, with Content-Length and Range. The length is only known once the
 *   end of the value was seen (is its last byte a pad?), so the first request for an object reads it once
 *   to measure it ("survey"), and the measure is kept for a while: later requests, Range requests
 *   included, stream at once.
 * - an H.264 elementary stream: re-wrapped into fragmented MP4 on the fly (no length, no Range).
 *
 * Everything streams: memory stays bounded whatever the size of the object.
 */

export interface OpenedMedia {
  body: Readable;
  length?: number;
  contentType: string;
  fileName: string;
  ranges: boolean;
  /** How the bytes are produced, for the log and the audit trail. */
  form: 'stored' | 'rewrapped';
}

interface Measure {
  /** Bytes served: the file's length. */
  total: number;
  /** Length of the DICOM value (documents) or of the encapsulated stream (pixel data), to notice a changed object. */
  stored: number;
  at: number;
}

type StoredForm = 'pdf' | 'jpeg' | 'mp4';

const WANTED = new Set<number>([
  Tags.SpecificCharacterSet,
  Tags.SOPClassUID,
  Tags.SeriesDescription,
  Tags.DocumentTitle,
  Tags.NumberOfFrames,
  Tags.FrameTime,
  Tags.CineRate,
  Tags.RecommendedDisplayFrameRate,
  Tags.InstanceNumber,
]);
const TARGETS = new Set<number>([Tags.EncapsulatedDocument, Tags.PixelData]);

export class MediaSource {
  private readonly measures = new Map<string, Measure>();

  constructor(
    private readonly pacs: PacsClient,
    private readonly log: Logger,
    private readonly opts: { measureTtlMs?: number; maxMeasures?: number } = {},
  ) {}

  async open(loc: InstanceLocator, kind: MediaKind, signal?: AbortSignal): Promise<OpenedMedia> {
    if (kind === 'video') return this.openVideo(loc, signal);
    return this.openStored(loc, kind, kind === 'pdf' ? 'pdf' : 'jpeg', signal);
  }

  private async openVideo(loc: InstanceLocator, signal?: AbortSignal): Promise<OpenedMedia> {
    const { reader, walked } = await this.walk(loc, 'video', signal);
    try {
      const stream = encapsulatedBytes(reader, walked);
      const first = await firstBytes(stream, 8);
      if (first.subarray(4, 8).toString('latin1') === 'ftyp') {
        await reader.close();
        return this.openStored(loc, 'video', 'mp4', signal);
      }
      const hints: VideoHints = { frameDurationSeconds: frameDuration(walked), numberOfFrames: decimal(walked.values, Tags.NumberOfFrames) };
      const mp4 = annexBToFmp4(prepend(first.head, stream), hints);
      // The init segment needs the parameter sets and the first picture: a stream that cannot be wrapped fails here, before any header is sent.
      const init = await mp4.next();
      if (init.done) throw new MediaFormatError('the video stream is empty');
      const body = Readable.from(prepend([init.value], mp4), { objectMode: false });
      body.once('close', () => void reader.close().catch(() => undefined));
      return { body, contentType: MIME_TYPES.video, fileName: nameOf('video', walked), ranges: false, form: 'rewrapped' };
    } catch (err) {
      await reader.close().catch(() => undefined);
      throw err;
    }
  }

  private async openStored(loc: InstanceLocator, kind: MediaKind, form: StoredForm, signal?: AbortSignal): Promise<OpenedMedia> {
    const key = `${loc.studyUid}|${loc.seriesUid}|${loc.sopUid}|${loc.pacsId ?? ''}|${form}`;
    let measure = this.cachedMeasure(key);
    if (!measure) {
      measure = await this.survey(loc, kind, form, signal);
      this.remember(key, measure);
    }
    const { reader, walked } = await this.walk(loc, kind, signal);
    try {
      if (form === 'pdf' && walked.target!.length !== measure.stored) {
        this.measures.delete(key);
        throw new MediaFormatError('the object changed in the PACS while it was being served; ask again');
      }
      const value = form === 'pdf' ? reader.take(measure.total, 'the encapsulated document') : limit(encapsulatedBytes(reader, walked), measure.total);
      const body = Readable.from(value, { objectMode: false, highWaterMark: 64 * 1024 });
      body.once('close', () => void reader.close().catch(() => undefined));
      return { body, length: measure.total, contentType: MIME_TYPES[kind], fileName: nameOf(kind, walked), ranges: true, form: 'stored' };
    } catch (err) {
      await reader.close().catch(() => undefined);
      throw err;
    }
  }

  /** Reads the value once to the end, through the inspector for its form, and measures the file in it. */
  private async survey(loc: InstanceLocator, kind: MediaKind, form: StoredForm, signal?: AbortSignal): Promise<Measure> {
    const started = performance.now();
    const { reader, walked } = await this.walk(loc, kind, signal);
    try {
      const inspector: Inspector = form === 'pdf' ? new PdfInspector() : form === 'jpeg' ? new JpegInspector() : new Mp4Inspector();
      let stored = 0;
      const value = form === 'pdf' ? reader.take(walked.target!.length!, 'the encapsulated document') : encapsulatedBytes(reader, walked);
      for await (const chunk of value) {
        stored += chunk.length;
        inspector.feed(chunk);
      }
      const total = inspector.finish();
      this.log.debug({ sopInstanceUid: loc.sopUid, form, stored, total, ms: Math.round(performance.now() - started) }, 'media measured');
      return { total, stored, at: Date.now() };
    } finally {
      await reader.close().catch(() => undefined);
    }
  }

  /** Opens the instance and walks to the value, checking that the object still is media of the promised kind. */
  private async walk(loc: InstanceLocator, kind: MediaKind, signal?: AbortSignal): Promise<{ reader: ByteReader; walked: Walked & { target: NonNullable<Walked['target']> } }> {
    const file = await this.pacs.openInstance(loc, signal);
    const reader = new ByteReader(file.body);
    try {
      const walked = await walkTo(reader, TARGETS, WANTED);
      const frames = decimal(walked.values, Tags.NumberOfFrames);
      const found = classifyMedia({ sopClassUid: text(walked.values, Tags.SOPClassUID), transferSyntaxUid: walked.transferSyntaxUid, numberOfFrames: frames });
      if (!found || !('kind' in found) || found.kind !== kind) throw new MediaFormatError(`the object is not ${kind === 'pdf' ? 'a PDF document' : kind === 'jpeg' ? 'a single JPEG picture' : 'an H.264 video'}`);
      const target = walked.target;
      const want = kind === 'pdf' ? Tags.EncapsulatedDocument : Tags.PixelData;
      if (!target || target.tag !== want) throw new MediaFormatError(kind === 'pdf' ? 'the object holds no encapsulated document' : 'the object holds no pixel data');
      if (kind === 'pdf' ? target.length === undefined : target.length !== undefined) {
        throw new MediaFormatError(kind === 'pdf' ? 'the encapsulated document has no defined length' : 'the pixel data is not encapsulated');
      }
      return { reader, walked: { ...walked, target } };
    } catch (err) {
      await reader.close().catch(() => undefined);
      throw err;
    }
  }

  private cachedMeasure(key: string): Measure | undefined {
    const m = this.measures.get(key);
    if (!m) return undefined;
    if (Date.now() - m.at > (this.opts.measureTtlMs ?? 15 * 60_000)) {
      this.measures.delete(key);
      return undefined;
    }
    this.measures.delete(key); // re-insert: most recently used last
    this.measures.set(key, m);
    return m;
  }

  private remember(key: string, m: Measure): void {
    this.measures.set(key, m);
    const max = this.opts.maxMeasures ?? 2000;
    while (this.measures.size > max) this.measures.delete(this.measures.keys().next().value!);
  }
}

/**
 * The bytes of an encapsulated Pixel Data value (reader just past its element header): the fragments of
 * its items after the Basic Offset Table, item headers left out. A single frame (or a video stream) may
 * span several fragments; more than one frame in the offset table is refused.
 */
async function* encapsulatedBytes(reader: ByteReader, walked: Walked): AsyncGenerator<Buffer> {
  const bot = await nextFragment(reader, walked.little);
  if (bot === undefined) throw new MediaFormatError('the encapsulated pixel data holds no item');
  if (bot > 4) throw new MediaFormatError('the pixel data holds more than one frame');
  await reader.skip(bot, 'the basic offset table');
  for (let len = await nextFragment(reader, walked.little); len !== undefined; len = await nextFragment(reader, walked.little)) {
    yield* reader.take(len, 'a pixel data fragment');
  }
}

async function* limit(source: AsyncGenerator<Buffer>, total: number): AsyncGenerator<Buffer> {
  let left = total;
  try {
    for await (const chunk of source) {
      if (chunk.length >= left) {
        if (left > 0) yield chunk.subarray(0, left);
        return;
      }
      left -= chunk.length;
      yield chunk;
    }
    if (left > 0) throw new MediaFormatError(`the object ended ${left} bytes short of its measured length`);
  } finally {
    await source.return(undefined);
  }
}

/** The first n bytes of a stream (fewer if it is shorter), and the chunks read to get them. */
async function firstBytes(source: AsyncGenerator<Buffer>, n: number): Promise<Buffer & { head: Buffer[] }> {
  const head: Buffer[] = [];
  let size = 0;
  while (size < n) {
    const r = await source.next();
    if (r.done) break;
    head.push(r.value);
    size += r.value.length;
  }
  const first = Buffer.concat(head).subarray(0, n) as Buffer & { head: Buffer[] };
  first.head = head;
  return first;
}

async function* prepend(head: Buffer[], rest: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  try {
    yield* head;
    for (let r = await rest.next(); !r.done; r = await rest.next()) yield r.value;
  } finally {
    await rest.return?.(undefined);
  }
}

/** Cine module timing, for streams that carry none: Frame Time (ms), else Cine Rate or Recommended Display Frame Rate (fps). */
function frameDuration(walked: Walked): number | undefined {
  const ms = decimal(walked.values, Tags.FrameTime);
  if (ms && ms > 0) return ms / 1000;
  const fps = decimal(walked.values, Tags.CineRate) ?? decimal(walked.values, Tags.RecommendedDisplayFrameRate);
  return fps && fps > 0 ? 1 / fps : undefined;
}

function nameOf(kind: MediaKind, walked: Walked): string {
  const v = walked.values;
  return mediaFileName(kind, { seriesDescription: text(v, Tags.SeriesDescription), documentTitle: text(v, Tags.DocumentTitle), instanceNumber: decimal(v, Tags.InstanceNumber) });
}

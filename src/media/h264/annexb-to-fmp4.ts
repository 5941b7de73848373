import { fragment, initSegment, type Fmp4Sample } from './fmp4.js';
import { H264Error, NalType, parsePps, parseSliceHeader, parseSps, type Pps, type SliceHeader, type Sps } from './h264-syntax.js';

/**
 * Re-wraps an H.264 Annex B elementary stream (what DICOM video objects usually hold) into fragmented
 * MP4 as it streams: NAL units are grouped into access units (pictures), field pairs into one sample,
 * display order is derived from picture order counts, and a fragment (moof + mdat) goes out at every IDR
 * picture, or once a few MB are queued. Memory stays bounded by one fragment plus a short look-ahead,
 * whatever the length of the clip.
 *
 * Streams no browser decodes (4:2:2/4:4:4, more than 8 bits, slice groups) are refused with H264Error
 * before anything is produced.
 */

export interface VideoHints {
  /** From the DICOM Cine module (Frame Time, Cine Rate…): used when the stream carries no timing. */
  frameDurationSeconds?: number;
  /** NumberOfFrames (0028,0008): gives the movie a duration up front. */
  numberOfFrames?: number;
}

export interface TransmuxOptions {
  /** Queued bytes past which a fragment goes out before the next IDR. */
  fragmentBytes?: number;
  /** Pictures kept back when a fragment goes out early, so that later pictures can still be ordered. */
  lookahead?: number;
  /** Largest NAL unit accepted. */
  maxNalBytes?: number;
}

export async function* annexBToFmp4(source: AsyncIterable<Buffer>, hints: VideoHints = {}, opts: TransmuxOptions = {}): AsyncGenerator<Buffer> {
  const muxer = new Muxer(hints, opts);
  for await (const nal of nalUnits(source, opts.maxNalBytes ?? 64 * 1024 * 1024)) {
    muxer.push(nal);
    yield* muxer.drain();
  }
  muxer.end();
  yield* muxer.drain();
}

/** Splits an Annex B byte stream at its start codes; leading and trailing zero bytes are not part of a NAL unit. */
export async function* nalUnits(source: AsyncIterable<Buffer>, maxNalBytes: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let size = 0;
  let started = false;
  let prevZeros = 0; // zero bytes at the end of what came before this chunk
  const emit = (): Buffer | undefined => {
    const nal = trimZeros(parts.length === 1 ? parts[0]! : Buffer.concat(parts, size));
    parts = [];
    size = 0;
    return nal.length > 0 ? nal : undefined;
  };
  for await (const chunk of source) {
    let from = 0;
    for (let j = chunk.indexOf(1); j >= 0; j = chunk.indexOf(1, j + 1)) {
      let zeros = 0;
      while (zeros < j && chunk[j - 1 - zeros] === 0) zeros++;
      const total = zeros === j ? zeros + prevZeros : zeros;
      if (total < 2) continue;
      if (!started) {
        if (chunk.subarray(0, j - zeros).some((b) => b !== 0) || (prevZeros === 0 && size > 0)) {
          throw new H264Error('the video is neither an MP4 file nor an H.264 Annex B stream');
        }
      } else {
        if (j - zeros > from) parts.push(chunk.subarray(from, j - zeros));
        size += Math.max(0, j - zeros - from);
        const nal = emit();
        if (nal) yield nal;
      }
      started = true;
      parts = [];
      size = 0;
      from = j + 1;
    }
    if (started) {
      if (from < chunk.length) {
        parts.push(chunk.subarray(from));
        size += chunk.length - from;
      }
      if (size > maxNalBytes) throw new H264Error(`a NAL unit is longer than ${maxNalBytes} bytes`);
    } else if (chunk.some((b) => b !== 0)) {
      throw new H264Error('the video is neither an MP4 file nor an H.264 Annex B stream');
    }
    let z = 0;
    while (z < chunk.length && chunk[chunk.length - 1 - z] === 0) z++;
    prevZeros = z === chunk.length ? prevZeros + z : z;
  }
  if (started && size > 0) {
    const nal = emit();
    if (nal) yield nal;
  }
}

function trimZeros(b: Buffer): Buffer {
  let end = b.length;
  while (end > 0 && b[end - 1] === 0) end--;
  return b.subarray(0, end);
}

interface AccessUnit {
  nals: Buffer[];
  first?: SliceHeader;
  intra: boolean;
}

interface Picture {
  nals: Buffer[];
  size: number;
  poc: number;
  decode: number;
  sync: boolean;
  /** An unpaired first field waiting for its second: frame_num and parity. */
  field?: { frameNum: number; bottom: boolean };
  display?: number;
}

const PLAYABLE_PROFILES = new Set([66, 77, 100, 118, 128]);

class Muxer {
  private readonly sps = new Map<number, Sps>();
  private readonly pps = new Map<number, Pps>();
  private au: AccessUnit = { nals: [], intra: true };
  private prevVcl?: SliceHeader;
  private readonly out: Buffer[] = [];
  private started = false;
  private timescale = 90_000;
  private duration = 3000;
  private decodeCount = 0;
  private fragments = 0;
  private readonly poc = new PocState();
  // The current period (IDR or MMCO 5 to the next): pictures are ranked by POC within it.
  private queue: Picture[] = [];
  private queueBytes = 0;
  private periodBase = 0;
  private periodCount = 0;
  private flushedKeys: Picture[] = [];
  private collapsed = 0;
  private maxFlushed?: Picture;
  private readonly fragmentBytes: number;
  private readonly lookahead: number;

  constructor(
    private readonly hints: VideoHints,
    opts: TransmuxOptions,
  ) {
    this.fragmentBytes = opts.fragmentBytes ?? 4 * 1024 * 1024;
    this.lookahead = Math.max(1, opts.lookahead ?? 16);
  }

  *drain(): Generator<Buffer> {
    while (this.out.length > 0) yield this.out.shift()!;
  }

  push(nal: Buffer): void {
    const type = nal[0]! & 0x1f;
    if ((nal[0]! & 0x80) !== 0) throw new H264Error('a NAL unit has its forbidden bit set');
    switch (type) {
      case NalType.Slice:
      case NalType.Idr: {
        const h = parseSliceHeader(nal, this.sps, this.pps);
        if (h.redundantPicCnt === 0) {
          if (this.au.first && this.prevVcl && newPicture(this.prevVcl, h, this.sps, this.pps)) this.closeAu();
          this.au.first ??= h;
          this.prevVcl = h;
        }
        if (h.sliceType !== 2 && h.sliceType !== 4) this.au.intra = false;
        this.au.nals.push(nal);
        return;
      }
      case NalType.Sps:
      case NalType.Pps: {
        this.closeAuIfPicture();
        const known = type === NalType.Sps ? this.sps : this.pps;
        const parsed = type === NalType.Sps ? parseSps(nal) : parsePps(nal);
        const before = known.get(parsed.id);
        (known as Map<number, Sps | Pps>).set(parsed.id, parsed);
        // Parameter sets known before the first picture go in the sample entry; a changed one later stays in band.
        if (this.started && !(before && before.raw.equals(nal))) this.au.nals.push(nal);
        return;
      }
      case NalType.Sei:
        this.closeAuIfPicture();
        this.au.nals.push(nal);
        return;
      case NalType.Aud:
      case NalType.Prefix:
      case NalType.SubsetSps:
      case 16:
      case 17:
      case 18:
        this.closeAuIfPicture();
        return;
      default:
        // End of sequence/stream, filler, SPS extension, auxiliary and non-base-view slices: not for a 2D player.
        return;
    }
  }

  end(): void {
    this.closeAuIfPicture();
    if (!this.started) throw new H264Error('the stream holds no picture a player could start from');
    this.flush(this.queue.length);
  }

  private closeAuIfPicture(): void {
    if (this.au.first) this.closeAu();
  }

  private closeAu(): void {
    const au = this.au;
    this.au = { nals: [], intra: true };
    const h = au.first!;
    const sps = this.sps.get(this.pps.get(h.ppsId)!.spsId)!;
    const { poc, newPeriod } = this.poc.next(h, sps);
    const idr = h.nalType === NalType.Idr;
    if (!this.started) {
      if (!idr && !au.intra) return; // nothing before the first intra picture can be decoded
      this.start(sps);
    }
    const size = au.nals.reduce((a, n) => a + 4 + n.length, 0);
    const last = this.queue[this.queue.length - 1];
    if (h.fieldPic && last?.field && last.field.frameNum === h.frameNum && last.field.bottom !== h.bottomField && !newPeriod) {
      // The second field of a pair: one sample holds both.
      last.nals.push(...au.nals);
      last.size += size;
      last.poc = Math.min(last.poc, poc);
      last.field = undefined;
      this.queueBytes += size;
      return;
    }
    if (newPeriod || this.decodeCount === 0) this.endPeriod();
    const pic: Picture = {
      nals: au.nals,
      size,
      poc,
      decode: this.decodeCount++,
      sync: idr || this.decodeCount === 1,
      field: h.fieldPic ? { frameNum: h.frameNum, bottom: h.bottomField } : undefined,
    };
    if (this.maxFlushed && compare(pic, this.maxFlushed) < 0) {
      throw new H264Error('the stream reorders pictures further than the gateway looks ahead');
    }
    this.queue.push(pic);
    this.periodCount++;
    this.queueBytes += size;
    if (this.queueBytes >= this.fragmentBytes && this.queue.length > this.lookahead) this.flush(this.queue.length - this.lookahead);
  }

  private start(sps: Sps): void {
    if (!PLAYABLE_PROFILES.has(sps.profileIdc) || sps.chromaFormatIdc !== 1 || sps.bitDepthLuma !== 8 || sps.bitDepthChroma !== 8) {
      throw new H264Error(`H.264 profile ${sps.profileIdc} (chroma format ${sps.chromaFormatIdc}, ${sps.bitDepthLuma} bits) is not playable in browsers`);
    }
    const t = sps.timing;
    const fps = t ? t.timeScale / (2 * t.numUnitsInTick) : undefined;
    if (t && fps !== undefined && fps >= 1 && fps <= 480 && t.timeScale < 2 ** 31) {
      this.timescale = t.timeScale;
      this.duration = 2 * t.numUnitsInTick;
    } else if (this.hints.frameDurationSeconds && this.hints.frameDurationSeconds > 1 / 480 && this.hints.frameDurationSeconds <= 10) {
      this.duration = Math.round(this.timescale * this.hints.frameDurationSeconds);
    }
    const spsList = [sps, ...[...this.sps.values()].filter((s) => s !== sps)];
    const total = this.hints.numberOfFrames && this.hints.numberOfFrames > 0 ? this.hints.numberOfFrames * this.duration : undefined;
    this.out.push(initSegment({ sps: spsList, pps: [...this.pps.values()].map((p) => p.raw), timescale: this.timescale, duration: total }));
    this.started = true;
  }

  private endPeriod(): void {
    this.flush(this.queue.length);
    this.periodBase += this.periodCount;
    this.periodCount = 0;
    this.flushedKeys = [];
    this.collapsed = 0;
    this.maxFlushed = undefined;
  }

  /** Sends the first `count` queued pictures as one fragment, their display positions settled. */
  private flush(count: number): void {
    if (count <= 0) return;
    const sorted = [...this.queue].sort(compare);
    const rank = new Map(sorted.map((p, i) => [p, i]));
    const going = this.queue.slice(0, count);
    for (const p of going) {
      const flushedBelow = this.collapsed + this.flushedKeys.filter((f) => compare(f, p) < 0).length;
      p.display = this.periodBase + flushedBelow + rank.get(p)!;
    }
    this.queue = this.queue.slice(count);
    this.queueBytes = this.queue.reduce((a, p) => a + p.size, 0);
    for (const p of going) {
      this.flushedKeys.push(p);
      if (!this.maxFlushed || compare(p, this.maxFlushed) > 0) this.maxFlushed = p;
    }
    // Flushed pictures below everything still queued (and so below everything to come) only count.
    const floor = this.queue.reduce<Picture | undefined>((m, p) => (!m || compare(p, m) < 0 ? p : m), undefined);
    const keep = floor ? this.flushedKeys.filter((f) => compare(f, floor) > 0) : [];
    this.collapsed += this.flushedKeys.length - keep.length;
    this.flushedKeys = keep;

    const samples: Fmp4Sample[] = going.map((p) => {
      const data: Buffer[] = [];
      for (const nal of p.nals) {
        const len = Buffer.allocUnsafe(4);
        len.writeUInt32BE(nal.length);
        data.push(len, nal);
      }
      return { data, size: p.size, duration: this.duration, compositionOffset: (p.display! - p.decode) * this.duration, sync: p.sync };
    });
    this.out.push(Buffer.concat(fragment(++this.fragments, going[0]!.decode * this.duration, samples)));
  }
}

function compare(a: Picture, b: Picture): number {
  return a.poc - b.poc || a.decode - b.decode;
}

/** 7.4.1.2.4: does this slice begin a new primary picture? */
function newPicture(a: SliceHeader, b: SliceHeader, spsById: Map<number, Sps>, ppsById: Map<number, Pps>): boolean {
  const sps = spsById.get(ppsById.get(b.ppsId)!.spsId)!;
  return (
    a.frameNum !== b.frameNum ||
    a.ppsId !== b.ppsId ||
    a.fieldPic !== b.fieldPic ||
    a.bottomField !== b.bottomField ||
    (a.nalRefIdc !== b.nalRefIdc && (a.nalRefIdc === 0 || b.nalRefIdc === 0)) ||
    (sps.pocType === 0 && (a.pocLsb !== b.pocLsb || a.deltaPocBottom !== b.deltaPocBottom)) ||
    (sps.pocType === 1 && (a.deltaPoc0 !== b.deltaPoc0 || a.deltaPoc1 !== b.deltaPoc1)) ||
    (a.nalType === NalType.Idr) !== (b.nalType === NalType.Idr) ||
    (a.nalType === NalType.Idr && b.nalType === NalType.Idr && a.idrPicId !== b.idrPicId)
  );
}

/** Picture order count (8.2.1), all three types; a new period starts at an IDR picture or after MMCO 5. */
class PocState {
  private prevMsb = 0;
  private prevLsb = 0;
  private prevFrameNumOffset = 0;
  private prevFrameNum = 0;
  private prevHadMmco5 = false;

  next(h: SliceHeader, sps: Sps): { poc: number; newPeriod: boolean } {
    const idr = h.nalType === NalType.Idr;
    let top: number;
    let bottom: number;
    if (sps.pocType === 0) {
      if (idr) {
        this.prevMsb = 0;
        this.prevLsb = 0;
      }
      const max = 2 ** sps.log2MaxPocLsb;
      let msb = this.prevMsb;
      if (h.pocLsb < this.prevLsb && this.prevLsb - h.pocLsb >= max / 2) msb += max;
      else if (h.pocLsb > this.prevLsb && h.pocLsb - this.prevLsb > max / 2) msb -= max;
      top = msb + h.pocLsb;
      bottom = h.fieldPic ? top : top + h.deltaPocBottom;
      if (h.nalRefIdc !== 0) {
        if (h.mmco5) {
          this.prevMsb = 0;
          this.prevLsb = h.fieldPic && h.bottomField ? 0 : top - Math.min(top, bottom);
        } else {
          this.prevMsb = msb;
          this.prevLsb = h.pocLsb;
        }
      }
    } else {
      const maxFrameNum = 2 ** sps.log2MaxFrameNum;
      const prevOffset = this.prevHadMmco5 ? 0 : this.prevFrameNumOffset;
      const offset = idr ? 0 : this.prevFrameNum > h.frameNum ? prevOffset + maxFrameNum : prevOffset;
      if (sps.pocType === 2) {
        const t = idr ? 0 : h.nalRefIdc === 0 ? 2 * (offset + h.frameNum) - 1 : 2 * (offset + h.frameNum);
        top = t;
        bottom = t;
      } else {
        const n = sps.offsetForRefFrame.length;
        let abs = n !== 0 ? offset + h.frameNum : 0;
        if (h.nalRefIdc === 0 && abs > 0) abs--;
        let expected = 0;
        if (abs > 0) {
          const cycle = sps.offsetForRefFrame.reduce((a, b) => a + b, 0);
          const cycleCount = Math.floor((abs - 1) / n);
          const inCycle = (abs - 1) % n;
          expected = cycleCount * cycle;
          for (let i = 0; i <= inCycle; i++) expected += sps.offsetForRefFrame[i]!;
        }
        if (h.nalRefIdc === 0) expected += sps.offsetForNonRefPic;
        top = expected + h.deltaPoc0;
        bottom = h.fieldPic ? expected + sps.offsetForTopToBottomField + h.deltaPoc0 : top + sps.offsetForTopToBottomField + h.deltaPoc1;
      }
      this.prevFrameNumOffset = offset;
      this.prevFrameNum = h.mmco5 ? 0 : h.frameNum;
    }
    this.prevHadMmco5 = h.mmco5;
    const poc = h.fieldPic ? (h.bottomField ? bottom : top) : Math.min(top, bottom);
    // After MMCO 5 the picture's own order count is reset to 0 (8.2.1): it opens a period like an IDR does.
    return { poc: h.mmco5 ? poc - Math.min(top, bottom) : poc, newPeriod: idr || h.mmco5 };
  }
}

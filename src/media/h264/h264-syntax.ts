/**
 * The few H.264 (ITU-T H.264 / ISO 14496-10) syntax structures a container needs: sequence and picture
 * parameter sets (picture size, POC type, VUI timing) and slice headers up to the reference picture
 * marking (what is needed to find picture boundaries and display order). Everything else is left to the
 * decoder.
 */

export class H264Error extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'H264Error';
  }
}

export const NalType = {
  Slice: 1,
  Idr: 5,
  Sei: 6,
  Sps: 7,
  Pps: 8,
  Aud: 9,
  EndOfSequence: 10,
  EndOfStream: 11,
  Filler: 12,
  SpsExtension: 13,
  Prefix: 14,
  SubsetSps: 15,
  AuxSlice: 19,
  SliceExtension: 20,
  SliceExtension3d: 21,
} as const;

/** Payload bytes with emulation prevention (00 00 03) removed, at most `max` of them. */
export function unescapeRbsp(nal: Buffer, max = nal.length): Buffer {
  const out = Buffer.allocUnsafe(Math.min(max, nal.length));
  let n = 0;
  let zeros = 0;
  for (let i = 1; i < nal.length && n < out.length; i++) {
    const b = nal[i]!;
    if (zeros >= 2 && b === 3) {
      zeros = 0;
      continue;
    }
    zeros = b === 0 ? zeros + 1 : 0;
    out[n++] = b;
  }
  return out.subarray(0, n);
}

export class BitReader {
  private bit = 0;
  constructor(private readonly buf: Buffer) {}

  u(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 2 + this.u1();
    return v;
  }
  u1(): number {
    const byte = this.bit >> 3;
    if (byte >= this.buf.length) throw new H264Error('a syntax element runs past the end of its NAL unit');
    const v = (this.buf[byte]! >> (7 - (this.bit & 7))) & 1;
    this.bit++;
    return v;
  }
  flag(): boolean {
    return this.u1() === 1;
  }
  ue(): number {
    let zeros = 0;
    while (this.u1() === 0) {
      if (++zeros > 31) throw new H264Error('an Exp-Golomb code is longer than 32 bits');
    }
    return zeros === 0 ? 0 : 2 ** zeros - 1 + this.u(zeros);
  }
  se(): number {
    const k = this.ue();
    return k % 2 === 1 ? (k + 1) / 2 : -(k / 2);
  }
}

export interface Sps {
  id: number;
  profileIdc: number;
  constraintFlags: number;
  levelIdc: number;
  chromaFormatIdc: number;
  separateColourPlane: boolean;
  bitDepthLuma: number;
  bitDepthChroma: number;
  log2MaxFrameNum: number;
  pocType: number;
  log2MaxPocLsb: number;
  deltaPicOrderAlwaysZero: boolean;
  offsetForNonRefPic: number;
  offsetForTopToBottomField: number;
  offsetForRefFrame: number[];
  frameMbsOnly: boolean;
  width: number;
  height: number;
  /** VUI timing: a frame lasts 2 × numUnitsInTick / timeScale seconds. */
  timing?: { numUnitsInTick: number; timeScale: number };
  raw: Buffer;
}

const HIGH_PROFILES = new Set([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135]);

export function parseSps(nal: Buffer): Sps {
  const r = new BitReader(unescapeRbsp(nal, 2048));
  const profileIdc = r.u(8);
  const constraintFlags = r.u(8);
  const levelIdc = r.u(8);
  const id = r.ue();
  let chromaFormatIdc = 1;
  let separateColourPlane = false;
  let bitDepthLuma = 8;
  let bitDepthChroma = 8;
  if (HIGH_PROFILES.has(profileIdc)) {
    chromaFormatIdc = r.ue();
    if (chromaFormatIdc === 3) separateColourPlane = r.flag();
    bitDepthLuma = r.ue() + 8;
    bitDepthChroma = r.ue() + 8;
    r.u1(); // qpprime_y_zero_transform_bypass_flag
    if (r.flag()) {
      for (let i = 0; i < (chromaFormatIdc !== 3 ? 8 : 12); i++) if (r.flag()) skipScalingList(r, i < 6 ? 16 : 64);
    }
  }
  const log2MaxFrameNum = r.ue() + 4;
  const pocType = r.ue();
  let log2MaxPocLsb = 0;
  let deltaPicOrderAlwaysZero = false;
  let offsetForNonRefPic = 0;
  let offsetForTopToBottomField = 0;
  const offsetForRefFrame: number[] = [];
  if (pocType === 0) {
    log2MaxPocLsb = r.ue() + 4;
  } else if (pocType === 1) {
    deltaPicOrderAlwaysZero = r.flag();
    offsetForNonRefPic = r.se();
    offsetForTopToBottomField = r.se();
    const n = r.ue();
    if (n > 255) throw new H264Error('num_ref_frames_in_pic_order_cnt_cycle is out of range');
    for (let i = 0; i < n; i++) offsetForRefFrame.push(r.se());
  } else if (pocType !== 2) {
    throw new H264Error(`pic_order_cnt_type ${pocType} is not valid`);
  }
  r.ue(); // max_num_ref_frames
  r.u1(); // gaps_in_frame_num_value_allowed_flag
  const widthMbs = r.ue() + 1;
  const heightMapUnits = r.ue() + 1;
  const frameMbsOnly = r.flag();
  if (!frameMbsOnly) r.u1(); // mb_adaptive_frame_field_flag
  r.u1(); // direct_8x8_inference_flag
  let crop = [0, 0, 0, 0];
  if (r.flag()) crop = [r.ue(), r.ue(), r.ue(), r.ue()];
  const chromaArrayType = separateColourPlane ? 0 : chromaFormatIdc;
  const cropX = chromaArrayType === 0 ? 1 : chromaFormatIdc === 3 ? 1 : 2;
  const cropY = (chromaArrayType === 0 ? 1 : chromaFormatIdc === 1 ? 2 : 1) * (frameMbsOnly ? 1 : 2);
  const width = widthMbs * 16 - cropX * (crop[0]! + crop[1]!);
  const height = (frameMbsOnly ? 1 : 2) * heightMapUnits * 16 - cropY * (crop[2]! + crop[3]!);
  let timing: Sps['timing'];
  if (r.flag()) timing = vuiTiming(r);
  return {
    id, profileIdc, constraintFlags, levelIdc, chromaFormatIdc, separateColourPlane, bitDepthLuma, bitDepthChroma,
    log2MaxFrameNum, pocType, log2MaxPocLsb, deltaPicOrderAlwaysZero, offsetForNonRefPic, offsetForTopToBottomField,
    offsetForRefFrame, frameMbsOnly, width, height, timing, raw: nal,
  };
}

function skipScalingList(r: BitReader, size: number): void {
  let last = 8;
  let next = 8;
  for (let j = 0; j < size; j++) {
    if (next !== 0) next = (last + r.se() + 256) % 256;
    last = next === 0 ? last : next;
  }
}

/** VUI up to timing_info (E.1.1); later fields (HRD, restrictions) are not needed. */
function vuiTiming(r: BitReader): Sps['timing'] {
  if (r.flag()) {
    if (r.u(8) === 255) r.u(32); // aspect_ratio_idc == Extended_SAR: sar_width, sar_height
  }
  if (r.flag()) r.u1(); // overscan
  if (r.flag()) {
    r.u(4); // video_format, video_full_range_flag
    if (r.flag()) r.u(24); // colour description
  }
  if (r.flag()) {
    r.ue();
    r.ue();
  }
  if (!r.flag()) return undefined;
  const numUnitsInTick = r.u(32);
  const timeScale = r.u(32);
  return numUnitsInTick > 0 && timeScale > 0 ? { numUnitsInTick, timeScale } : undefined;
}

export interface Pps {
  id: number;
  spsId: number;
  bottomFieldPicOrderInFramePresent: boolean;
  numRefIdxL0Default: number;
  numRefIdxL1Default: number;
  weightedPred: boolean;
  weightedBipredIdc: number;
  redundantPicCntPresent: boolean;
  raw: Buffer;
}

export function parsePps(nal: Buffer): Pps {
  const r = new BitReader(unescapeRbsp(nal, 1024));
  const id = r.ue();
  const spsId = r.ue();
  r.u1(); // entropy_coding_mode_flag
  const bottomFieldPicOrderInFramePresent = r.flag();
  if (r.ue() > 0) throw new H264Error('slice groups (FMO) are not playable in browsers');
  const numRefIdxL0Default = r.ue() + 1;
  const numRefIdxL1Default = r.ue() + 1;
  const weightedPred = r.flag();
  const weightedBipredIdc = r.u(2);
  r.se(); // pic_init_qp_minus26
  r.se(); // pic_init_qs_minus26
  r.se(); // chroma_qp_index_offset
  r.u1(); // deblocking_filter_control_present_flag
  r.u1(); // constrained_intra_pred_flag
  const redundantPicCntPresent = r.flag();
  return { id, spsId, bottomFieldPicOrderInFramePresent, numRefIdxL0Default, numRefIdxL1Default, weightedPred, weightedBipredIdc, redundantPicCntPresent, raw: nal };
}

export interface SliceHeader {
  nalType: number;
  nalRefIdc: number;
  firstMb: number;
  /** slice_type % 5: 0 P, 1 B, 2 I, 3 SP, 4 SI */
  sliceType: number;
  ppsId: number;
  frameNum: number;
  fieldPic: boolean;
  bottomField: boolean;
  idrPicId: number;
  pocLsb: number;
  deltaPocBottom: number;
  deltaPoc0: number;
  deltaPoc1: number;
  redundantPicCnt: number;
  /** memory_management_control_operation 5 (resets frame numbers and POC, like an IDR). */
  mmco5: boolean;
}

export function parseSliceHeader(nal: Buffer, spsById: Map<number, Sps>, ppsById: Map<number, Pps>): SliceHeader {
  const nalType = nal[0]! & 0x1f;
  const nalRefIdc = (nal[0]! >> 5) & 3;
  const r = new BitReader(unescapeRbsp(nal, 4096));
  const firstMb = r.ue();
  const sliceType = r.ue() % 5;
  const ppsId = r.ue();
  const pps = ppsById.get(ppsId);
  const sps = pps && spsById.get(pps.spsId);
  if (!pps || !sps) throw new H264Error(`a slice refers to parameter set ${ppsId}, which the stream has not sent`);
  if (sps.separateColourPlane) r.u(2);
  const frameNum = r.u(sps.log2MaxFrameNum);
  let fieldPic = false;
  let bottomField = false;
  if (!sps.frameMbsOnly) {
    fieldPic = r.flag();
    if (fieldPic) bottomField = r.flag();
  }
  const idr = nalType === NalType.Idr;
  const idrPicId = idr ? r.ue() : 0;
  let pocLsb = 0;
  let deltaPocBottom = 0;
  let deltaPoc0 = 0;
  let deltaPoc1 = 0;
  if (sps.pocType === 0) {
    pocLsb = r.u(sps.log2MaxPocLsb);
    if (pps.bottomFieldPicOrderInFramePresent && !fieldPic) deltaPocBottom = r.se();
  } else if (sps.pocType === 1 && !sps.deltaPicOrderAlwaysZero) {
    deltaPoc0 = r.se();
    if (pps.bottomFieldPicOrderInFramePresent && !fieldPic) deltaPoc1 = r.se();
  }
  const redundantPicCnt = pps.redundantPicCntPresent ? r.ue() : 0;
  const header: SliceHeader = { nalType, nalRefIdc, firstMb, sliceType, ppsId, frameNum, fieldPic, bottomField, idrPicId, pocLsb, deltaPocBottom, deltaPoc0, deltaPoc1, redundantPicCnt, mmco5: false };
  if (nalRefIdc === 0 || idr) return header; // no adaptive marking to look for

  // Only a reference non-IDR picture can carry MMCO 5: read on to dec_ref_pic_marking().
  const P = 0, B = 1, SP = 3;
  let l0 = pps.numRefIdxL0Default;
  let l1 = pps.numRefIdxL1Default;
  if (sliceType === B) r.u1(); // direct_spatial_mv_pred_flag
  if (sliceType === P || sliceType === SP || sliceType === B) {
    if (r.flag()) {
      l0 = r.ue() + 1;
      if (sliceType === B) l1 = r.ue() + 1;
    }
  }
  if (sliceType !== 2 && sliceType !== 4) skipRefPicListModification(r);
  if (sliceType === B) skipRefPicListModification(r);
  if ((pps.weightedPred && (sliceType === P || sliceType === SP)) || (pps.weightedBipredIdc === 1 && sliceType === B)) {
    const chroma = !sps.separateColourPlane && sps.chromaFormatIdc !== 0;
    r.ue(); // luma_log2_weight_denom
    if (chroma) r.ue();
    for (const n of sliceType === B ? [l0, l1] : [l0]) {
      for (let i = 0; i < n; i++) {
        if (r.flag()) (r.se(), r.se());
        if (chroma && r.flag()) (r.se(), r.se(), r.se(), r.se());
      }
    }
  }
  if (r.flag()) {
    for (let op = r.ue(), guard = 0; op !== 0; op = r.ue()) {
      if (++guard > 64) throw new H264Error('too many memory management operations in one slice');
      if (op === 5) header.mmco5 = true;
      if (op === 1 || op === 3) r.ue();
      if (op === 2) r.ue();
      if (op === 3 || op === 6) r.ue();
      if (op === 4) r.ue();
    }
  }
  return header;
}

function skipRefPicListModification(r: BitReader): void {
  if (!r.flag()) return;
  for (let idc = r.ue(), guard = 0; idc !== 3; idc = r.ue()) {
    if (++guard > 64) throw new H264Error('a reference list modification does not end');
    if (idc > 5) throw new H264Error('modification_of_pic_nums_idc is out of range');
    r.ue();
  }
}

/**
 * Which DICOM objects hold media a browser can open, decided from the SOP Class UID and the transfer
 * syntax alone (what a PACS listing can give without reading the object):
 *
 * - Encapsulated PDF                                   → application/pdf (the document bytes)
 * - a single-frame JPEG baseline/extended image of a
 *   photographic class (Secondary Capture, VL, …)      → image/jpeg (the frame's codestream)
 * - H.264 video (transfer syntaxes .102 to .106)       → video/mp4 (stored MP4, or re-wrapped)
 *
 * MPEG-2 (.100/.101) and HEVC (.107/.108) video is recognised but left out: browsers cannot play MPEG-2,
 * and HEVC plays in too few of them to hand out as a link that works.
 */

export type MediaKind = 'pdf' | 'jpeg' | 'video';

export const MEDIA_KINDS: readonly MediaKind[] = ['pdf', 'jpeg', 'video'];

export const MIME_TYPES: Record<MediaKind, string> = {
  pdf: 'application/pdf',
  jpeg: 'image/jpeg',
  video: 'video/mp4',
};

/** A media link's `x` claim: the kind, and the archive's id hint when it has one (`kind` or `kind:pacsId`). */
export function mediaClaim(kind: MediaKind, pacsId?: string): string {
  return pacsId ? `${kind}:${pacsId}` : kind;
}

export function parseMediaClaim(x: string | undefined): { kind: MediaKind; pacsId?: string } | undefined {
  if (!x) return undefined;
  const i = x.indexOf(':');
  const kind = (i < 0 ? x : x.slice(0, i)) as MediaKind;
  if (!MEDIA_KINDS.includes(kind)) return undefined;
  return { kind, pacsId: i < 0 ? undefined : x.slice(i + 1) || undefined };
}

export const EXTENSIONS: Record<MediaKind, string> = { pdf: 'pdf', jpeg: 'jpg', video: 'mp4' };

export const SopClasses = {
  EncapsulatedPdf: '1.2.840.10008.5.1.4.1.1.104.1',
} as const;

/** Classes whose single-frame JPEG pixel data is a picture to show as is (not a diagnostic image). */
const PHOTO_CLASSES = new Set([
  '1.2.840.10008.5.1.4.1.1.7', // Secondary Capture
  '1.2.840.10008.5.1.4.1.1.7.4', // Multi-frame True Color Secondary Capture
  '1.2.840.10008.5.1.4.1.1.77.1.1', // VL Endoscopic Image
  '1.2.840.10008.5.1.4.1.1.77.1.2', // VL Microscopic Image
  '1.2.840.10008.5.1.4.1.1.77.1.3', // VL Slide-Coordinates Microscopic Image
  '1.2.840.10008.5.1.4.1.1.77.1.4', // VL Photographic Image
  '1.2.840.10008.5.1.4.1.1.77.1.5.1', // Ophthalmic Photography 8 Bit Image
]);

/** JPEG processes a browser decodes: baseline (process 1) and extended 8-bit (process 2; checked when served). */
const BROWSER_JPEG = new Set(['1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.4.51']);

/** MPEG-4 AVC/H.264: High Profile L4.1, BD-compatible, L4.2 2D, L4.2 3D, Stereo High (base view). */
const H264 = new Set(['1.2.840.10008.1.2.4.102', '1.2.840.10008.1.2.4.103', '1.2.840.10008.1.2.4.104', '1.2.840.10008.1.2.4.105', '1.2.840.10008.1.2.4.106']);
const UNPLAYABLE_VIDEO: Record<string, string> = {
  '1.2.840.10008.1.2.4.100': 'MPEG-2 video',
  '1.2.840.10008.1.2.4.101': 'MPEG-2 video',
  '1.2.840.10008.1.2.4.107': 'HEVC video',
  '1.2.840.10008.1.2.4.108': 'HEVC video',
};

/**
 * Series modalities that may hold media. Only their instances are worth a per-instance look on archives
 * whose listing lacks SOP Class or transfer syntax (Orthanc's REST API): a CT or MR series never costs one.
 */
export const MEDIA_MODALITIES = new Set(['DOC', 'OT', 'SC', 'XC', 'ES', 'US', 'GM', 'VL', 'OP', 'IVUS', 'SM']);

/** Whether a series of this modality (possibly unknown) may hold media objects. */
export function mayHoldMedia(modality: string | undefined): boolean {
  return !modality || MEDIA_MODALITIES.has(modality.trim().toUpperCase());
}

export interface MediaFacts {
  sopClassUid?: string;
  transferSyntaxUid?: string;
  numberOfFrames?: number;
}

export type Classification =
  | { kind: MediaKind }
  /** A media object the gateway will not serve (logged, left out of mediaUrls). */
  | { excluded: string }
  /** Cannot tell without the transfer syntax: look it up, then classify again. */
  | { needsTransferSyntax: true }
  /** Not media. */
  | undefined;

export function classifyMedia(f: MediaFacts): Classification {
  const sop = f.sopClassUid;
  const ts = f.transferSyntaxUid;
  if (sop === SopClasses.EncapsulatedPdf) return { kind: 'pdf' };
  // Listings that say nothing about an instance (a series the archive layer ruled out) are not media.
  if (ts === undefined) return sop !== undefined && couldHoldPixelMedia(sop) ? { needsTransferSyntax: true } : undefined;
  if (H264.has(ts)) return { kind: 'video' };
  const unplayable = UNPLAYABLE_VIDEO[ts];
  if (unplayable) return { excluded: `${unplayable} (${ts}) cannot be served in a form browsers play` };
  if (sop !== undefined && PHOTO_CLASSES.has(sop) && BROWSER_JPEG.has(ts)) {
    if (f.numberOfFrames !== undefined && f.numberOfFrames > 1) return undefined; // a multi-frame JPEG is a cine loop, not a picture
    return { kind: 'jpeg' };
  }
  return undefined;
}

/** Pixel-data classes that may carry a photograph or a video stream, depending on the transfer syntax. */
function couldHoldPixelMedia(sop: string): boolean {
  return PHOTO_CLASSES.has(sop) || VIDEO_CAPABLE.has(sop);
}

const VIDEO_CAPABLE = new Set([
  '1.2.840.10008.5.1.4.1.1.77.1.1.1', // Video Endoscopic Image
  '1.2.840.10008.5.1.4.1.1.77.1.2.1', // Video Microscopic Image
  '1.2.840.10008.5.1.4.1.1.77.1.4.1', // Video Photographic Image
  '1.2.840.10008.5.1.4.1.1.3.1', // Ultrasound Multi-frame Image
  '1.2.840.10008.5.1.4.1.1.6.1', // Ultrasound Image (some devices store clips here)
  '1.2.840.10008.5.1.4.1.1.7.4', // Multi-frame True Color Secondary Capture
  '1.2.840.10008.5.1.4.1.1.12.1', // X-Ray Angiographic (MPEG-4 in some archives)
  '1.2.840.10008.5.1.4.1.1.77.1.5.1',
]);

/**
 * The file name of a media object: its SeriesDescription, else its DocumentTitle, else "document 3" from
 * the kind and instance number; never a patient attribute. Safe in any filesystem.
 */
export function mediaFileName(kind: MediaKind, names: { seriesDescription?: string; documentTitle?: string; instanceNumber?: number }): string {
  const clean = (names.seriesDescription ?? names.documentTitle ?? '')
    .normalize('NFC')
    .replace(/[\u0000-\u001f\u007f"*/:<>?\\|]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/^\.+/, '')
    .slice(0, 96)
    .trim();
  const word = kind === 'pdf' ? 'document' : kind === 'jpeg' ? 'image' : 'video';
  const fallback = names.instanceNumber !== undefined ? `${word} ${names.instanceNumber}` : word;
  return `${clean || fallback}.${EXTENSIONS[kind]}`;
}

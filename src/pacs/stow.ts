import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { PacsHttp, header } from './http.js';
import { PacsError } from './pacs-client.js';
import { num, str, type DicomJson } from './dicom-json.js';

/**
 * STOW-RS of one Part 10 object to one DICOMweb root, streamed: the multipart framing is written around
 * the object's stream, never around a buffer of it. When the object's length is known the request carries
 * a Content-Length (Orthanc 1.10 takes chunked STOW bodies too, other archives may not). If the object
 * stream fails, the request is torn down before the closing boundary, so the archive never sees a
 * complete request and stores nothing.
 */
export interface StowResult {
  /** The archive says it stored this object: 200/202 with the SOP Instance UID in ReferencedSOPSequence. */
  stored: boolean;
  status: number;
  /** FailedSOPSequence (PS3.18 Table 10.5.3-1): SOP Instance UID and FailureReason, e.g. 272 (0x0110). */
  failures: Array<{ sopInstanceUid?: string; reason?: number }>;
  /** WarningReason codes on this object's ReferencedSOPSequence item, e.g. 0xB000 (coercion). */
  warnings: number[];
  /** The Warning response header, when the archive sent one. */
  warning?: string;
}

const SEQ = { failed: '00081198', referenced: '00081199', sopInstance: '00081155', failureReason: '00081197', warningReason: '00081196' } as const;
const MAX_RESPONSE_CHARS = 1 << 20;

export class StowClient {
  constructor(
    readonly root: string,
    private readonly http: PacsHttp,
  ) {}

  /** Whether the archive lists this instance now (see listsInstance). */
  holds(ids: { studyUid: string; seriesUid: string; sopUid: string }, signal?: AbortSignal): Promise<boolean | undefined> {
    return listsInstance(this.http, this.root, ids, { signal });
  }

  async store(
    object: Readable | AsyncIterable<Buffer>,
    opts: { length?: number; studyUid?: string; sopInstanceUid?: string; signal?: AbortSignal } = {},
  ): Promise<StowResult> {
    const boundary = `avara-${randomUUID()}`;
    const head = Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`);
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
    const url = `${this.root}/studies${opts.studyUid ? `/${encodeURIComponent(opts.studyUid)}` : ''}`;
    const headers: Record<string, string> = {
      'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}`,
      accept: 'application/dicom+json',
    };
    if (opts.length !== undefined) headers['content-length'] = String(head.length + opts.length + tail.length);
    const body = Readable.from(frame(head, object, tail), { objectMode: false });
    const res = await this.http.request(url, { method: 'POST', headers, body, signal: opts.signal });
    const json = parse(await boundedText(res.body));
    const failures = items(json, SEQ.failed).map((i) => ({ sopInstanceUid: str(i, SEQ.sopInstance), reason: num(i, SEQ.failureReason) }));
    const referenced = items(json, SEQ.referenced).filter((i) => opts.sopInstanceUid === undefined || str(i, SEQ.sopInstance) === opts.sopInstanceUid);
    const warning = header(res.headers, 'warning');
    if (res.status >= 500 && failures.length === 0) {
      throw new PacsError('rejected', `the PACS answered HTTP ${res.status} to STOW-RS`, res.status);
    }
    // Orthanc answers 200 with both sequences empty when it stored nothing (e.g. no SOP Instance UID), so
    // success is this object's UID in ReferencedSOPSequence, never the status code alone.
    const mine = failures.filter((f) => opts.sopInstanceUid === undefined || f.sopInstanceUid === undefined || f.sopInstanceUid === opts.sopInstanceUid);
    const stored = (res.status === 200 || res.status === 202) && referenced.length > 0 && mine.length === 0;
    const warnings = referenced.flatMap((i) => (i[SEQ.warningReason]?.Value ?? []).map(Number).filter(Number.isFinite));
    return { stored, status: res.status, failures, warnings, warning };
  }
}

/**
 * Whether the archive lists the object (QIDO-RS), for a second opinion on a STOW "success": Orthanc 1.10
 * with DICOMweb 1.7 answers 200 with the SOP in ReferencedSOPSequence for an instance its
 * ReceivedInstanceFilter (Lua) refused and did not store. A few short retries cover archives that index
 * just after answering. Resolves undefined when the archive cannot be asked (the caller decides).
 */
export async function listsInstance(
  http: PacsHttp,
  root: string,
  ids: { studyUid: string; seriesUid: string; sopUid: string },
  opts: { attempts?: number; delayMs?: number; signal?: AbortSignal } = {},
): Promise<boolean | undefined> {
  const url = `${root}/studies/${encodeURIComponent(ids.studyUid)}/series/${encodeURIComponent(ids.seriesUid)}/instances?SOPInstanceUID=${encodeURIComponent(ids.sopUid)}`;
  const attempts = opts.attempts ?? 3;
  for (let i = 0; i < attempts; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, opts.delayMs ?? 250));
    let json: DicomJson[] | undefined;
    try {
      ({ json } = await http.getJson<DicomJson[]>(url, opts.signal));
    } catch {
      return undefined;
    }
    if (Array.isArray(json) && json.some((o) => str(o, '00080018') === ids.sopUid)) return true;
  }
  return false;
}

/** FailureReason / WarningReason codes (PS3.18 10.5.3, PS3.4 Annex B.2.3) in words a viewer can show. */
const REASONS: Record<number, string> = {
  0x0110: 'processing failure',
  0x0111: 'duplicate SOP instance',
  0x0117: 'invalid SOP instance',
  0x0119: 'class-instance conflict',
  0x0122: 'SOP class not supported',
  0x0124: 'not authorized',
  0xa700: 'out of resources',
  0xa900: 'data set does not match SOP class',
  0xc000: 'cannot understand',
  0xc122: 'transfer syntax not supported',
  0xb000: 'coercion of data elements',
  0xb006: 'elements discarded',
  0xb007: 'data set does not match SOP class',
};

export function describeReason(code: number | undefined): string {
  if (code === undefined) return 'no reason given';
  const hex = `0x${code.toString(16).toUpperCase().padStart(4, '0')}`;
  const known = REASONS[code] ?? (code >= 0xa700 && code <= 0xa7ff ? REASONS[0xa700] : code >= 0xc000 && code <= 0xcfff ? REASONS[0xc000] : undefined);
  return known ? `${known} (${hex})` : `reason ${hex}`;
}

/** Duplicate SOP Instance (0x0111): the archive holds an object with this UID and kept it. */
export const DUPLICATE_SOP_INSTANCE = 0x0111;

async function* frame(head: Buffer, object: Readable | AsyncIterable<Buffer>, tail: Buffer): AsyncGenerator<Buffer> {
  yield head;
  for await (const chunk of object) yield chunk as Buffer;
  yield tail;
}

/** Reads at most MAX_RESPONSE_CHARS of the archive's answer: it is only ever a small JSON document. */
async function boundedText(body: AsyncIterable<Buffer | string> & { destroy?: () => void }): Promise<string> {
  let text = '';
  for await (const chunk of body) {
    text += chunk.toString();
    if (text.length > MAX_RESPONSE_CHARS) {
      body.destroy?.();
      break;
    }
  }
  return text;
}

function parse(text: string): DicomJson | undefined {
  try {
    const json: unknown = text.trim() ? JSON.parse(text) : undefined;
    // Some archives wrap the response dataset in an array.
    const obj = Array.isArray(json) ? json[0] : json;
    return obj && typeof obj === 'object' ? (obj as DicomJson) : undefined;
  } catch {
    return undefined;
  }
}

function items(json: DicomJson | undefined, tag: string): DicomJson[] {
  const v = json?.[tag]?.Value;
  return Array.isArray(v) ? (v as DicomJson[]) : [];
}

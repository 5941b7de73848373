import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { PacsHttp, header } from './http.js';
import { PacsError } from './pacs-client.js';
import { Tag, num, str, type DicomJson } from './dicom-json.js';

/**
 * STOW-RS of one Part 10 object to one DICOMweb root, streamed: the multipart framing is written around
 * the object's stream, never around a buffer of it. When the object's length is known the request carries
 * a Content-Length (some archives, Orthanc among them, do not take chunked uploads).
 */
export interface StowResult {
  /** The archive said it stored the object (200, or 202 with the SOP in ReferencedSOPSequence). */
  stored: boolean;
  status: number;
  /** Failure reasons from FailedSOPSequence (PS3.18 Table 10.5.3-1), e.g. 272 processing failure. */
  failures: Array<{ sopInstanceUid?: string; reason?: number }>;
  warning?: string;
}

export class StowClient {
  constructor(
    readonly root: string,
    private readonly http: PacsHttp,
  ) {}

  async store(object: Readable, opts: { length?: number; studyUid?: string; signal?: AbortSignal } = {}): Promise<StowResult> {
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
    const text = await res.body.text();
    let json: DicomJson | undefined;
    try {
      json = text.trim() ? (JSON.parse(text) as DicomJson) : undefined;
    } catch {
      json = undefined;
    }
    const failures = items(json, '00081198').map((i) => ({ sopInstanceUid: str(i, Tag.SOPInstanceUID) ?? str(i, '00081155'), reason: num(i, '00081197') }));
    const referenced = items(json, '00081199');
    const warning = header(res.headers, 'warning');
    if (res.status >= 500 && failures.length === 0) {
      throw new PacsError('rejected', `the PACS answered HTTP ${res.status} to STOW-RS`, res.status);
    }
    const stored = (res.status === 200 || res.status === 202) && failures.length === 0 && (referenced.length > 0 || res.status === 200);
    return { stored, status: res.status, failures, warning };
  }
}

async function* frame(head: Buffer, object: Readable, tail: Buffer): AsyncGenerator<Buffer> {
  yield head;
  for await (const chunk of object) yield chunk as Buffer;
  yield tail;
}

function items(json: DicomJson | undefined, tag: string): DicomJson[] {
  const v = json?.[tag]?.Value;
  return Array.isArray(v) ? (v as DicomJson[]) : [];
}

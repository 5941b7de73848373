import { PacsHttp, header } from './http.js';
import { boundaryOf, readFirstPart, MultipartError } from './multipart.js';
import { Tag, num, str, type DicomJson } from './dicom-json.js';
import { PacsError, type InstanceLocator, type InstanceRef, type InstanceStream, type PacsClient, type StudyRecord } from './pacs-client.js';

/** The general path: QIDO-RS to find, WADO-RS to retrieve. Works with any DICOMweb archive. */
export class DicomwebPacs implements PacsClient {
  readonly flavor = 'dicomweb' as const;

  constructor(
    private readonly root: string,
    private readonly http: PacsHttp,
    private readonly pageSize = 1000,
  ) {}

  async ping(signal?: AbortSignal): Promise<void> {
    await this.http.getJson<unknown>(`${this.root}/studies?limit=1`, signal);
  }

  async findStudy(studyUid: string, signal?: AbortSignal): Promise<StudyRecord | undefined> {
    const url = `${this.root}/studies?StudyInstanceUID=${encodeURIComponent(studyUid)}&includefield=all`;
    const { json } = await this.http.getJson<DicomJson[]>(url, signal);
    const match = (json ?? []).find((s) => str(s, Tag.StudyInstanceUID) === studyUid);
    return match as StudyRecord | undefined;
  }

  async listInstances(studyUid: string, signal?: AbortSignal): Promise<InstanceRef[]> {
    const seen = new Set<string>();
    const out: InstanceRef[] = [];
    for (let offset = 0; ; ) {
      const url =
        `${this.root}/studies/${encodeURIComponent(studyUid)}/instances` +
        `?includefield=${Tag.SeriesDescription},${Tag.AvailableTransferSyntaxUID}&limit=${this.pageSize}&offset=${offset}`;
      const { json, headers } = await this.http.getJson<DicomJson[]>(url, signal);
      const page = json ?? [];
      for (const obj of page) {
        const ref = toRef(studyUid, obj);
        if (!ref) continue;
        const key = `${ref.seriesUid}/${ref.sopUid}`;
        if (seen.has(key)) continue; // a UID-addressed retrieve can reach only one of two same-UID objects
        seen.add(key);
        out.push(ref);
      }
      offset += page.length;
      // A page shorter than asked for is the last, unless the archive says it capped the results.
      if (page.length === 0 || (page.length < this.pageSize && !saysTruncated(header(headers, 'warning')))) return out;
    }
  }

  async openInstance(ref: InstanceLocator, signal?: AbortSignal): Promise<InstanceStream> {
    const url =
      `${this.root}/studies/${encodeURIComponent(ref.studyUid)}/series/${encodeURIComponent(ref.seriesUid)}` +
      `/instances/${encodeURIComponent(ref.sopUid)}`;
    // transfer-syntax=* asks for the bytes as stored; an archive that will not do that gets the plain request.
    let res = await this.http.request(url, { headers: { accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' }, signal });
    if (res.status === 406 || res.status === 400) {
      await res.body.dump();
      res = await this.http.request(url, { headers: { accept: 'multipart/related; type="application/dicom"' }, signal });
    }
    if (res.status === 404 || res.status === 204) {
      await res.body.dump();
      throw new PacsError('not_found', 'the PACS does not hold this instance', res.status);
    }
    if (res.status >= 400) {
      await res.body.dump();
      throw new PacsError('rejected', `the PACS answered HTTP ${res.status}`, res.status);
    }
    const boundary = boundaryOf(header(res.headers, 'content-type'));
    if (!boundary) {
      res.body.destroy();
      throw new PacsError('bad_response', 'the PACS answered without a multipart/related boundary');
    }
    try {
      const part = await readFirstPart(res.body, boundary);
      return { body: part.body, length: part.length };
    } catch (err) {
      res.body.destroy();
      if (err instanceof MultipartError) throw new PacsError('bad_response', err.message);
      throw err;
    }
  }
}

function toRef(studyUid: string, obj: DicomJson): InstanceRef | undefined {
  const seriesUid = str(obj, Tag.SeriesInstanceUID);
  const sopUid = str(obj, Tag.SOPInstanceUID);
  if (!seriesUid || !sopUid) return undefined;
  return {
    studyUid,
    seriesUid,
    sopUid,
    sopClassUid: str(obj, Tag.SOPClassUID),
    transferSyntaxUid: str(obj, Tag.TransferSyntaxUID) ?? str(obj, Tag.AvailableTransferSyntaxUID),
    seriesDescription: str(obj, Tag.SeriesDescription),
    instanceNumber: num(obj, Tag.InstanceNumber),
  };
}

/** PS3.18 §8.3.4.4: archives that cap results say so in a Warning header (e.g. dcm4chee "additional results"). */
function saysTruncated(warning: string | undefined): boolean {
  return warning !== undefined && /(additional|more|truncat|limit|exceed)/i.test(warning);
}

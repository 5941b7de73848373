import { PacsHttp, header } from './http.js';
import { boundaryOf, readFirstPart, MultipartError } from './multipart.js';
import { Tag, num, str, type DicomJson } from './dicom-json.js';
import { PacsError, type InstanceLocator, type InstanceRef, type InstanceStream, type PacsClient, type StudyRecord } from './pacs-client.js';

/** The general path: QIDO-RS to find, WADO-RS to retrieve. Works with any DICOMweb archive. */
export class DicomwebPacs implements PacsClient {
  readonly flavor = 'dicomweb' as const;

  /** pageSize 0: let the archive page (see query()). */
  constructor(
    private readonly root: string,
    private readonly http: PacsHttp,
    private readonly pageSize = 0,
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

  /**
   * Every instance of the study. A study of PARALLEL_FROM instances or more, in 2 to MAX_PARALLEL_SERIES
   * series, is listed series by series, SERIES_CONCURRENCY at a time (faster on Orthanc than one study-level query); a smaller
   * one with one query. The archive's own instance count is the check that nothing was capped away: a
   * listing that stays short of it fails with the reason rather than handing out part of a study.
   */
  async listInstances(studyUid: string, signal?: AbortSignal): Promise<InstanceRef[]> {
    const study = encodeURIComponent(studyUid);
    const [summary] = await this.query(
      `${this.root}/studies?StudyInstanceUID=${study}&includefield=${Tag.NumberOfStudyRelatedInstances},${Tag.NumberOfStudyRelatedSeries}`,
      undefined,
      signal,
    );
    if (!summary || str(summary, Tag.StudyInstanceUID) !== studyUid) return [];
    const expected = num(summary, Tag.NumberOfStudyRelatedInstances);
    const seriesCount = num(summary, Tag.NumberOfStudyRelatedSeries) ?? 2;
    let objects: DicomJson[];
    // Per series only when there are few, large series: a study of thousands of one-instance series would
    // cost thousands of queries.
    const perSeries = expected !== undefined && expected >= PARALLEL_FROM && seriesCount > 1 && seriesCount <= MAX_PARALLEL_SERIES;
    if (perSeries) {
      const series = await this.query(`${this.root}/studies/${study}/series?includefield=${Tag.NumberOfSeriesRelatedInstances}`, seriesCount, signal);
      const pages = await mapLimit(series, SERIES_CONCURRENCY, (s) => {
        const uid = str(s, Tag.SeriesInstanceUID) ?? '';
        const url = `${this.root}/studies/${study}/series/${encodeURIComponent(uid)}/instances?includefield=${INSTANCE_FIELDS}`;
        return this.query(url, num(s, Tag.NumberOfSeriesRelatedInstances), signal);
      });
      objects = pages.flat();
    } else {
      objects = await this.query(`${this.root}/studies/${study}/instances?includefield=${INSTANCE_FIELDS}`, expected, signal);
    }
    const seen = new Set<string>();
    const out: InstanceRef[] = [];
    for (const obj of objects) {
      const ref = toRef(studyUid, obj);
      if (!ref) continue;
      const key = `${ref.seriesUid}/${ref.sopUid}`;
      if (seen.has(key)) continue; // a UID-addressed retrieve can reach only one of two same-UID objects
      seen.add(key);
      out.push(ref);
    }
    if (expected !== undefined && objects.length < expected) {
      throw new PacsError(
        'bad_response',
        `the PACS listed ${objects.length} of the study's ${expected} instances: it caps query results without paging them (raise its limit, e.g. Orthanc's LimitFindInstances, or set QIDO_PAGE_SIZE)`,
      );
    }
    return out;
  }

  /**
   * One QIDO-RS query, all its results. Without QIDO_PAGE_SIZE the archive picks the page size, and we ask
   * for more (offset = what we have) while it says it capped them (Warning header, PS3.18 §8.3.4.4) or while
   * we have fewer than the count it gave for the study or series. With QIDO_PAGE_SIZE every page asks for
   * that many. Asking Orthanc for small pages is slow: it redoes the whole lookup for each one (10,000
   * instances: 8.8 s in pages of 1,000 against 5.7 s at once).
   */
  private async query(base: string, expected: number | undefined, signal?: AbortSignal): Promise<DicomJson[]> {
    const out: DicomJson[] = [];
    const sep = base.includes('?') ? '&' : '?';
    for (;;) {
      const paging = this.pageSize > 0 ? `limit=${this.pageSize}&offset=${out.length}` : out.length > 0 ? `offset=${out.length}` : '';
      const { json, headers } = await this.http.getJson<DicomJson[]>(paging ? `${base}${sep}${paging}` : base, signal);
      const page = json ?? [];
      out.push(...page);
      const more =
        saysTruncated(header(headers, 'warning')) ||
        (this.pageSize > 0 && page.length >= this.pageSize) ||
        (expected !== undefined && out.length < expected);
      if (page.length === 0 || !more) return out;
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
    numberOfFrames: num(obj, Tag.NumberOfFrames),
    modality: str(obj, Tag.Modality),
  };
}

const PARALLEL_FROM = 1000;
const SERIES_CONCURRENCY = 4;
const MAX_PARALLEL_SERIES = 64;
// SOP Class is a default QIDO instance attribute, named anyway for archives that return only what is asked.
// Orthanc (DICOMweb 1.7) returns SOPClassUID, SeriesDescription and NumberOfFrames but never a transfer
// syntax (0008,3002 or 0002,0010, whatever includefield says): media detection reads it from the object
// header for the few photo/video-class instances that need it (src/media/media-finder.ts).
const INSTANCE_FIELDS = [Tag.SOPClassUID, Tag.Modality, Tag.SeriesDescription, Tag.NumberOfFrames, Tag.AvailableTransferSyntaxUID].join(',');

async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** PS3.18 §8.3.4.4: archives that cap results say so in a Warning header (e.g. dcm4chee "additional results"). */
function saysTruncated(warning: string | undefined): boolean {
  return warning !== undefined && /(additional|more|truncat|limit|exceed)/i.test(warning);
}

// Checks the dcmtk-generated DICOM fixtures with dcmdump (and dcmjs, the parser the gateway uses).
// Generated files are cached in <repo>/.fixtures, so only the first run pays for generation.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import dcmjs from 'dcmjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildLargeFixture,
  buildManyInstanceStudy,
  buildStudyFixtures,
  dcmdumpTags,
  dcmdumpTagsMany,
  DEFAULT_PATIENT_ID,
  type Fixture,
  LATIN1_PATIENT_NAME,
  MULTIFRAME_FRAMES,
  newUid,
  SopClass,
  TransferSyntax,
  UTF8_PATIENT_NAME,
} from './support/fixtures.js';

const UID_RE = /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+$/;
const expectValidUid = (uid: string | undefined) => {
  expect(uid).toMatch(UID_RE);
  expect(uid!.length).toBeLessThanOrEqual(64);
};

const TAGS = {
  mediaSopClass: '0002,0002',
  mediaSop: '0002,0003',
  transferSyntax: '0002,0010',
  charset: '0008,0005',
  sopClass: '0008,0016',
  sop: '0008,0018',
  studyDate: '0008,0020',
  modality: '0008,0060',
  patientName: '0010,0010',
  patientId: '0010,0020',
  study: '0020,000d',
  series: '0020,000e',
  seriesNumber: '0020,0011',
  instanceNumber: '0020,0013',
  frames: '0028,0008',
  rows: '0028,0010',
  cols: '0028,0011',
  bitsAllocated: '0028,0100',
} as const;

function readDicom(buf: Buffer) {
  return dcmjs.data.DicomMessage.readFile(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer);
}

describe('newUid', () => {
  it('returns unique, valid 2.25 UIDs', () => {
    const uids = Array.from({ length: 2000 }, () => newUid());
    expect(new Set(uids).size).toBe(uids.length);
    for (const uid of uids) {
      expectValidUid(uid);
      expect(uid.startsWith('2.25.')).toBe(true);
    }
  });
});

describe('buildStudyFixtures', () => {
  let fixtures: Fixture[];
  let tags: Map<string, Record<string, string>>;
  const byName = (name: string) => {
    const f = fixtures.find((x) => x.name === name);
    if (!f) throw new Error(`no fixture ${name}`);
    return f;
  };

  beforeAll(async () => {
    fixtures = await buildStudyFixtures();
    tags = await dcmdumpTagsMany(
      fixtures.map((f) => f.path),
      Object.values(TAGS),
    );
  }, 60_000);

  it('covers every transfer syntax / charset kind in one study with several series', () => {
    expect(fixtures.map((f) => [f.name, f.transferSyntax])).toEqual([
      ['explicit-le', TransferSyntax.ExplicitVRLittleEndian],
      ['implicit-le', TransferSyntax.ImplicitVRLittleEndian],
      ['big-endian', TransferSyntax.ExplicitVRBigEndian],
      ['jpeg-baseline', TransferSyntax.JPEGBaseline8Bit],
      ['jpeg-lossless', TransferSyntax.JPEGLosslessSV1],
      ['rle', TransferSyntax.RLELossless],
      ['multiframe', TransferSyntax.ExplicitVRLittleEndian],
      ['latin1', TransferSyntax.ExplicitVRLittleEndian],
      ['utf8', TransferSyntax.ExplicitVRLittleEndian],
    ]);
    expect(new Set(fixtures.map((f) => f.studyUid)).size).toBe(1);
    expect(new Set(fixtures.map((f) => f.seriesUid)).size).toBe(5);
    expect(new Set(fixtures.map((f) => f.sopUid)).size).toBe(fixtures.length);
    for (const f of fixtures) {
      expect(path.isAbsolute(f.path)).toBe(true);
      for (const uid of [f.studyUid, f.seriesUid, f.sopUid, f.sopClassUid, f.transferSyntax]) expectValidUid(uid);
    }
  });

  it('writes files whose dcmdump header matches the returned metadata', async () => {
    for (const f of fixtures) {
      const t = tags.get(f.path)!;
      expect((await stat(f.path)).size, f.name).toBe(f.sizeBytes);
      expect(t[TAGS.transferSyntax], f.name).toBe(f.transferSyntax);
      expect(t[TAGS.mediaSop], f.name).toBe(f.sopUid);
      expect(t[TAGS.sop], f.name).toBe(f.sopUid);
      expect(t[TAGS.mediaSopClass], f.name).toBe(f.sopClassUid);
      expect(t[TAGS.sopClass], f.name).toBe(f.sopClassUid);
      expect(t[TAGS.study], f.name).toBe(f.studyUid);
      expect(t[TAGS.series], f.name).toBe(f.seriesUid);
      expect(t[TAGS.patientId], f.name).toBe(DEFAULT_PATIENT_ID);
      expect(t[TAGS.patientName], f.name).toBeTruthy();
      expect(t[TAGS.studyDate], f.name).toMatch(/^\d{8}$/);
      expect(t[TAGS.modality], f.name).toBe('OT');
      expect(t[TAGS.seriesNumber], f.name).toMatch(/^[1-9]\d*$/);
      expect(t[TAGS.instanceNumber], f.name).toMatch(/^[1-9]\d*$/);
      expect(Number(t[TAGS.rows]), f.name).toBe(64);
      expect(Number(t[TAGS.cols]), f.name).toBe(64);
    }
    // (SeriesNumber, InstanceNumber) is unique, and SeriesNumber maps 1:1 to SeriesInstanceUID.
    const pairs = fixtures.map((f) => `${tags.get(f.path)![TAGS.seriesNumber]}/${tags.get(f.path)![TAGS.instanceNumber]}`);
    expect(new Set(pairs).size).toBe(fixtures.length);
    const seriesNumbers = new Map(fixtures.map((f) => [f.seriesUid, tags.get(f.path)![TAGS.seriesNumber]]));
    expect(new Set(seriesNumbers.values()).size).toBe(seriesNumbers.size);
  });

  it('uses an 8-bit source for JPEG baseline and 16-bit for the other encodings', () => {
    expect(tags.get(byName('jpeg-baseline').path)![TAGS.bitsAllocated]).toBe('8');
    for (const name of ['explicit-le', 'big-endian', 'jpeg-lossless', 'rle']) {
      expect(tags.get(byName(name).path)![TAGS.bitsAllocated], name).toBe('16');
    }
  });

  it('has a multi-frame instance with NumberOfFrames', () => {
    const mf = byName('multiframe');
    expect(mf.sopClassUid).toBe(SopClass.MultiFrameGrayscaleByteSC);
    expect(tags.get(mf.path)![TAGS.frames]).toBe(String(MULTIFRAME_FRAMES));
    for (const f of fixtures.filter((x) => x !== mf)) expect(tags.get(f.path)![TAGS.frames], f.name).toBeUndefined();
  });

  it('stores the Latin-1 PatientName as ISO 8859-1 bytes under ISO_IR 100', async () => {
    const f = byName('latin1');
    // Without +U8 dcmdump prints the stored bytes (decoded 1:1 as latin1 by the helper).
    const raw = await dcmdumpTags(f.path, [TAGS.charset, TAGS.patientName], { utf8: false });
    expect(raw[TAGS.charset]).toBe('ISO_IR 100');
    expect(Buffer.from(raw[TAGS.patientName]!, 'latin1')).toEqual(Buffer.from(LATIN1_PATIENT_NAME, 'latin1'));
    expect(tags.get(f.path)![TAGS.patientName]).toBe(LATIN1_PATIENT_NAME); // +U8 conversion
    const bytes = await readFile(f.path);
    expect(bytes.includes(Buffer.from(LATIN1_PATIENT_NAME, 'latin1'))).toBe(true);
    expect(bytes.includes(Buffer.from(LATIN1_PATIENT_NAME, 'utf8'))).toBe(false);
  });

  it('stores the UTF-8 PatientName as UTF-8 bytes under ISO_IR 192', async () => {
    const f = byName('utf8');
    const raw = await dcmdumpTags(f.path, [TAGS.charset, TAGS.patientName], { utf8: false });
    expect(raw[TAGS.charset]).toBe('ISO_IR 192');
    expect(Buffer.from(raw[TAGS.patientName]!, 'latin1').toString('utf8')).toBe(UTF8_PATIENT_NAME);
    expect(tags.get(f.path)![TAGS.patientName]).toBe(UTF8_PATIENT_NAME);
  });

  it('is readable by dcmjs', async () => {
    for (const f of fixtures) {
      const dict = readDicom(await readFile(f.path));
      expect(dict.meta['00020010']?.Value?.[0], f.name).toBe(f.transferSyntax);
      const ds = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dict.dict);
      expect(ds.SOPInstanceUID, f.name).toBe(f.sopUid);
      expect(ds.StudyInstanceUID, f.name).toBe(f.studyUid);
      expect(ds.PixelData, f.name).toBeDefined();
    }
  });

  it('reuses the cache on the second call', async () => {
    const mtimes = await Promise.all(fixtures.map(async (f) => (await stat(f.path)).mtimeMs));
    const t0 = performance.now();
    const again = await buildStudyFixtures();
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(again).toEqual(fixtures);
    expect(await Promise.all(again.map(async (f) => (await stat(f.path)).mtimeMs))).toEqual(mtimes);
  });

  describe('with a caller-supplied studyUid and dir', () => {
    let tmp: string;
    beforeAll(async () => {
      tmp = await mkdtemp(path.join(os.tmpdir(), 'avara-fixtures-'));
    });
    afterAll(async () => {
      await rm(tmp, { recursive: true, force: true });
    });

    it('puts every instance in that study, with fresh series/SOP UIDs', async () => {
      const studyUid = newUid();
      const own = await buildStudyFixtures({ dir: tmp, studyUid });
      expect(own.every((f) => f.path.startsWith(tmp + path.sep))).toBe(true);
      const t = await dcmdumpTagsMany(
        own.map((f) => f.path),
        [TAGS.study, TAGS.sop],
      );
      for (const f of own) {
        expect(f.studyUid).toBe(studyUid);
        expect(t.get(f.path)![TAGS.study]).toBe(studyUid);
        expect(t.get(f.path)![TAGS.sop]).toBe(f.sopUid);
      }
      const defaults = new Set(fixtures.flatMap((f) => [f.sopUid, f.seriesUid]));
      expect(own.some((f) => defaults.has(f.sopUid) || defaults.has(f.seriesUid))).toBe(false);
    }, 60_000);
  });
});

describe('buildLargeFixture', () => {
  it('writes 100 MiB of explicit-little-endian OW pixel data in its own study', async () => {
    const [large, study] = await Promise.all([buildLargeFixture(), buildStudyFixtures()]);
    expect(large.name).toBe('large');
    expect(large.transferSyntax).toBe(TransferSyntax.ExplicitVRLittleEndian);
    expect(large.studyUid).not.toBe(study[0]!.studyUid);
    expect(large.sizeBytes).toBeGreaterThan(100 * 1024 * 1024);
    expect(large.sizeBytes).toBeLessThan(100 * 1024 * 1024 + 8192);
    expect((await stat(large.path)).size).toBe(large.sizeBytes);

    const t = await dcmdumpTags(large.path, [TAGS.transferSyntax, TAGS.sop, TAGS.study, TAGS.rows, TAGS.cols, TAGS.bitsAllocated]);
    expect(t[TAGS.transferSyntax]).toBe(TransferSyntax.ExplicitVRLittleEndian);
    expect(t[TAGS.sop]).toBe(large.sopUid);
    expect(t[TAGS.study]).toBe(large.studyUid);
    expect(Number(t[TAGS.rows]) * Number(t[TAGS.cols]) * (Number(t[TAGS.bitsAllocated]) / 8)).toBe(100 * 1024 * 1024);
    // dcmdump -M does not load the value but prints its length: "(7fe0,0010) OW (not loaded) # 104857600, 1 PixelData"
    const { stdout } = await promisify(execFile)('dcmdump', ['-q', '-M', '+P', '7fe0,0010', large.path]);
    expect(stdout).toMatch(/^\(7fe0,0010\) OW .*# 104857600, 1 PixelData/m);
  }, 120_000);
});

describe('buildManyInstanceStudy', () => {
  it('writes 2000 valid instances over 4 series', async () => {
    const t0 = performance.now();
    const many = await buildManyInstanceStudy({ count: 2000, series: 4 });
    const elapsed = performance.now() - t0;
    expect(elapsed).toBeLessThan(30_000);
    expect(many.files).toHaveLength(2000);
    expect(new Set(many.files).size).toBe(2000);
    expect(many.seriesUids).toHaveLength(4);
    expect(new Set(many.seriesUids).size).toBe(4);
    expectValidUid(many.studyUid);
    many.seriesUids.forEach(expectValidUid);

    const t = await dcmdumpTagsMany(many.files, [
      TAGS.transferSyntax,
      TAGS.mediaSop,
      TAGS.sop,
      TAGS.study,
      TAGS.series,
      TAGS.seriesNumber,
      TAGS.instanceNumber,
    ]);
    const sops = new Set<string>();
    const perSeries = new Map<string, Set<string>>();
    for (const file of many.files) {
      const v = t.get(file)!;
      expect(v[TAGS.transferSyntax]).toBe(TransferSyntax.ExplicitVRLittleEndian);
      expect(v[TAGS.study]).toBe(many.studyUid);
      expect(many.seriesUids).toContain(v[TAGS.series]);
      expect(v[TAGS.mediaSop]).toBe(v[TAGS.sop]);
      expectValidUid(v[TAGS.sop]);
      sops.add(v[TAGS.sop]!);
      const inst = perSeries.get(v[TAGS.series]!) ?? new Set<string>();
      inst.add(v[TAGS.instanceNumber]!);
      perSeries.set(v[TAGS.series]!, inst);
      expect(v[TAGS.seriesNumber]).toBe(String(many.seriesUids.indexOf(v[TAGS.series]!) + 1));
    }
    expect(sops.size).toBe(2000);
    expect([...perSeries.values()].map((s) => s.size)).toEqual([500, 500, 500, 500]);

    // dcmjs (the gateway's parser) reads a sample, and pixel data differs per instance.
    const sample = [0, 1, 499, 500, 1000, 1999].map((i) => many.files[i]!);
    const pixels = new Set<string>();
    for (const file of sample) {
      const ds = dcmjs.data.DicomMetaDictionary.naturalizeDataset(readDicom(await readFile(file)).dict);
      expect(ds.SOPInstanceUID).toBe(t.get(file)![TAGS.sop]);
      const px = (ds.PixelData as ArrayBuffer[])[0]!;
      expect(px.byteLength).toBe(32 * 32);
      pixels.add(Buffer.from(px).toString('hex'));
    }
    expect(pixels.size).toBe(sample.length);
  }, 120_000);

  it('rejects bad arguments', async () => {
    await expect(buildManyInstanceStudy({ count: 0 })).rejects.toThrow(RangeError);
    await expect(buildManyInstanceStudy({ count: 3, series: 4 })).rejects.toThrow(RangeError);
  });
});

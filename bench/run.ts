/**
 * npm run bench — every figure is measured in this one run against the same real Orthanc, and printed
 * as a ratio against what the PACS itself does. The gateway runs as its own built process (dist/) so its
 * peak RSS is read from /proc. Nothing here asserts: the numbers are for people.
 *
 * BENCH_QUICK=1 skips the 10,000-instance study; BENCH_ONLY=streaming,study,uploads,reports runs only those.
 */
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'undici';
import { buildLargeFixture, buildManyInstanceStudy } from '../test/support/fixtures.js';
import { startOrthanc, type TestOrthanc } from '../test/support/orthanc.js';
import { studyAccessEvent } from '../test/support/gateway.js';
import { drain, fmt, median, medianSeconds, startGatewayProcess, type BenchContext, type GatewayProcess } from './lib.js';

const FLAVORS = ['dicomweb', 'orthanc'] as const;
const only = process.env.BENCH_ONLY?.split(',').map((s) => s.trim());
const wanted = (section: string) => !only || only.includes(section);
const rows: Array<[string, string]> = [];
function report(label: string, value: string): void {
  rows.push([label, value]);
  console.log(`${label.padEnd(78)} ${value}`);
}

async function uploadAll(orthanc: TestOrthanc, files: string[], parallel = 4): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < files.length) {
        const f = files[next++]!;
        await orthanc.upload(readFileSync(f));
      }
    }),
  );
}

async function linkFor(gw: GatewayProcess, studyUid: string): Promise<string[]> {
  const res = await gw.send(studyAccessEvent(studyUid));
  const json = (await res.json()) as { authorized: boolean; urls: string[]; error?: string };
  if (!json.authorized) throw new Error(`study access refused: ${json.error}`);
  return json.urls;
}

async function benchStreaming(orthanc: TestOrthanc): Promise<void> {
  const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
  console.log(`\n## One 100 MiB instance (median of ${ROUNDS} rounds after a warm-up; direct and gateway alternate)`);
  const large = await buildLargeFixture({ sizeMiB: 100 });
  const id = await orthanc.upload(large.path);
  const wadoRs = `${orthanc.dicomwebUrl}/studies/${large.studyUid}/series/${large.seriesUid}/instances/${large.sopUid}`;
  const accept = { accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' };
  const gateways = await Promise.all(FLAVORS.map((flavor) => startGatewayProcess(orthanc, { PACS_FLAVOR: flavor })));
  try {
    const links = await Promise.all(gateways.map(async (gw) => (await linkFor(gw, large.studyUid))[0]!));
    // Two families, each in its own steady state: what reads through WADO-RS (Orthanc builds the whole
    // multipart answer in memory first), then what reads Orthanc's stored file. Within a family the direct
    // and the gateway runs alternate, so a slower moment of the machine weighs on both alike; mixing the
    // families made every file read after a WADO-RS one ~60% slower in Orthanc, a cost no deployment pays.
    const families: Array<Array<[string, () => Promise<unknown>]>> = [
      [
        ['direct', () => drain(wadoRs, accept)],
        ['dicomweb', () => drain(links[0]!)],
      ],
      [
        ['native', () => drain(`${orthanc.url}/instances/${id}/file`)],
        ['orthanc', () => drain(links[1]!)],
      ],
    ];
    const times = new Map<string, number[]>();
    for (const family of families) {
      for (let round = -1; round < ROUNDS; round++) {
        for (const [name, run] of family) {
          const started = performance.now();
          await run();
          if (round >= 0) times.set(name, [...(times.get(name) ?? []), (performance.now() - started) / 1000]);
        }
      }
    }
    const m = (name: string) => median(times.get(name)!);
    report('direct Orthanc WADO-RS', fmt.s(m('direct')));
    report('direct Orthanc native /instances/{id}/file', fmt.s(m('native')));
    for (const flavor of FLAVORS) {
      report(`gateway (${flavor} path)`, fmt.s(m(flavor)));
      report(`  speed vs direct WADO-RS (target ≥ 0.9x${flavor === 'orthanc' ? ', ≥ 2x on this path' : ''})`, fmt.x(m('direct') / m(flavor)));
      report(`  speed vs direct native file`, fmt.x(m('native') / m(flavor)));
    }
  } finally {
    await Promise.all(gateways.map((gw) => gw.stop()));
  }

  console.log('\n## Eight clients streaming 100 MiB at once');
  for (const flavor of FLAVORS) {
    const gw = await startGatewayProcess(orthanc, { PACS_FLAVOR: flavor });
    try {
      const urls = await Promise.all(Array.from({ length: 8 }, () => linkFor(gw, large.studyUid).then((u) => u[0]!)));
      const before = gw.peakRssMb();
      const started = performance.now();
      const results = await Promise.all(urls.map((u) => drain(u)));
      const seconds = (performance.now() - started) / 1000;
      const total = results.reduce((a, r) => a + r.bytes, 0);
      report(`gateway (${flavor} path): 8 x 100 MiB in`, `${fmt.s(seconds)} (${(total / 1e6 / seconds).toFixed(0)} MB/s)`);
      report(`  peak RSS (target < 200 MB; < 100 MB on the Orthanc path); at idle ${fmt.mb(before)}`, fmt.mb(gw.peakRssMb()));
    } finally {
      await gw.stop();
    }
  }
}

async function benchStudyAccess(orthanc: TestOrthanc, count: number): Promise<void> {
  console.log(`\n## Study access, ${count} instances (median of 3, after a warm-up; listing cache off)`);
  const many = await buildManyInstanceStudy({ count, series: Math.max(4, Math.round(count / 500)) });
  const loadStarted = performance.now();
  await uploadAll(orthanc, many.files);
  console.log(`(loaded ${count} instances into Orthanc in ${((performance.now() - loadStarted) / 1000).toFixed(1)} s)`);
  const qido = `${orthanc.dicomwebUrl}/studies/${many.studyUid}/instances`;
  const bare = await medianSeconds(3, async () => {
    const res = await request(qido, { headers: { accept: 'application/dicom+json' } });
    const json = (await res.body.json()) as unknown[];
    if (json.length !== count) throw new Error(`QIDO listed ${json.length} of ${count}`);
  });
  report(`bare QIDO-RS /studies/{uid}/instances (${count})`, fmt.s(bare));
  for (const flavor of FLAVORS) {
    const gw = await startGatewayProcess(orthanc, { PACS_FLAVOR: flavor, STUDY_CACHE_SECONDS: '0', SYNC_DEADLINE_MS: '60000' });
    try {
      const t = await medianSeconds(3, async () => {
        const urls = await linkFor(gw, many.studyUid);
        if (urls.length !== count) throw new Error(`gateway listed ${urls.length} of ${count}`);
      });
      report(`gateway study.access_requested (${flavor} path, ${count})`, fmt.s(t));
      report(`  over bare QIDO (target ≤ 1.5x${flavor === 'orthanc' && count >= 10000 ? '; < 2 s absolute' : ''})`, fmt.x(t / bare));
    } finally {
      await gw.stop();
    }
  }
}

/** Sections other features add: bench/<name>.ts exporting bench<Name>(ctx). */
async function benchExtras(orthanc: TestOrthanc): Promise<void> {
  const ctx: BenchContext = { orthanc, startGateway: (env) => startGatewayProcess(orthanc, env), report };
  for (const [file, fn] of [
    ['uploads', 'benchUploads'],
    ['reports', 'benchReports'],
  ] as const) {
    if (!wanted(file) || !existsSync(new URL(`./${file}.ts`, import.meta.url))) continue;
    console.log(`\n## ${file}`);
    const mod = (await import(`./${file}.js`)) as Record<string, (c: BenchContext) => Promise<void>>;
    await mod[fn]!(ctx);
  }
}

async function main(): Promise<void> {
  if (!existsSync(new URL('../dist/src/main.js', import.meta.url))) throw new Error('run "npm run build" first (npm run bench does)');
  console.log(`# avara-gateway bench — ${new Date().toISOString()}, Node ${process.version}`);
  const orthanc = await startOrthanc();
  try {
    if (wanted('streaming')) await benchStreaming(orthanc);
    if (wanted('study')) await benchStudyAccess(orthanc, 2000);
    if (wanted('study') && !process.env.BENCH_QUICK) await benchStudyAccess(orthanc, 10000);
    await benchExtras(orthanc);
  } finally {
    await orthanc.stop();
  }
  console.log('\n# summary');
  for (const [l, v] of rows) console.log(`${l.trim()}: ${v}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

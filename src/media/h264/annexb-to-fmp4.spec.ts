import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { annexBToFmp4, nalUnits } from './annexb-to-fmp4.js';

const run = promisify(execFile);
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'avara-h264-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function chunked(buf: Buffer, size: number): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) chunks.push(buf.subarray(i, i + size));
  return Readable.from(chunks);
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** An Annex B stream from ffmpeg's test source: 48 frames at 24 fps, libx264 with the given options. */
async function clip(name: string, x264: string[]): Promise<Buffer> {
  const file = path.join(dir, `${name}.h264`);
  await run('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=176x144:rate=24', '-frames:v', '48', '-c:v', 'libx264', ...x264, '-bsf:v', 'h264_mp4toannexb', '-f', 'h264', file]);
  return readFileSync(file);
}

async function framesOf(file: string): Promise<string[]> {
  const { stdout } = await run('ffmpeg', ['-v', 'error', '-i', file, '-f', 'framemd5', '-']);
  return stdout.split('\n').filter((l) => /^\d/.test(l)).map((l) => l.split(',').pop()!.trim());
}

describe('Annex B NAL unit splitting', () => {
  it('splits at 3- and 4-byte start codes across chunk edges and drops zero padding', async () => {
    const stream = Buffer.from([0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 0, 1, 0x65, 0, 0, 3, 1, 9, 0, 0]);
    for (const size of [1, 2, 3, 5, 100]) {
      const nals = await collect(nalUnits(chunked(stream, size), 1 << 20));
      expect(nals.map((n) => [...n]), `chunks of ${size}`).toEqual([[0x67, 1, 2], [0x68, 3], [0x65, 0, 0, 3, 1, 9]]);
    }
  });

  it('refuses what is not an elementary stream', async () => {
    await expect(collect(nalUnits(chunked(Buffer.from('not video at all'), 4), 1 << 20))).rejects.toThrow(/neither/);
  });
});

describe('H.264 Annex B to fragmented MP4', () => {
  const cases: Array<[string, string[]]> = [
    ['b-pyramid, two GOPs', ['-profile:v', 'high', '-g', '24', '-bf', '3', '-pix_fmt', 'yuv420p']],
    ['no B-frames (POC type 2)', ['-profile:v', 'main', '-bf', '0', '-pix_fmt', 'yuv420p']],
    ['interlaced (MBAFF)', ['-pix_fmt', 'yuv420p', '-x264-params', 'interlaced=1:tff=1']],
    ['open GOPs, deep reordering', ['-pix_fmt', 'yuv420p', '-x264-params', 'keyint=12:open-gop=1:bframes=5:b-pyramid=strict:ref=6']],
  ];
  for (const [name, x264] of cases) {
    it(`keeps every picture, in display order: ${name}`, async () => {
      const raw = await clip(name.replace(/\W+/g, '-'), x264);
      // Small fragments force early flushes within a GOP; 1-byte chunks exercise every split.
      const out = Buffer.concat(await collect(annexBToFmp4(chunked(raw, 997), { numberOfFrames: 48 }, { fragmentBytes: 2000, lookahead: 16 })));
      const mp4 = path.join(dir, `${name.replace(/\W+/g, '-')}.mp4`);
      writeFileSync(mp4, out);
      const { stdout } = await run('ffprobe', ['-v', 'error', '-count_frames', '-show_entries', 'stream=codec_name,nb_read_frames,r_frame_rate', '-of', 'json', mp4]);
      expect(JSON.parse(stdout).streams[0]).toMatchObject({ codec_name: 'h264', nb_read_frames: '48', r_frame_rate: '24/1' });
      const rawFile = path.join(dir, `${name.replace(/\W+/g, '-')}.h264`);
      expect(await framesOf(mp4)).toEqual(await framesOf(rawFile));
    });
  }

  it('gives the same MP4 whatever the chunking', async () => {
    const raw = await clip('chunking', ['-pix_fmt', 'yuv420p', '-g', '10']);
    const whole = Buffer.concat(await collect(annexBToFmp4(chunked(raw, raw.length))));
    const bytes = Buffer.concat(await collect(annexBToFmp4(chunked(raw, 1))));
    expect(bytes.equals(whole)).toBe(true);
  });

  it('refuses a stream browsers cannot decode, before producing anything', async () => {
    const raw = await clip('yuv444', ['-pix_fmt', 'yuv444p']);
    const it = annexBToFmp4(chunked(raw, 4096));
    await expect(it.next()).rejects.toThrow(/not playable in browsers/);
  });
});

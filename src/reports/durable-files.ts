import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';

/**
 * Files that must survive a crash: written to a temporary name, fsync'd, renamed into place, and the
 * directory fsync'd, so a reader (or a restart) sees either the old file or the whole new one.
 */

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function writeFileDurable(file: string, data: string | Buffer): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(path.dirname(file));
}

/** Copies through a temporary file (never leaving a partial `to`), fsync'd. */
export async function copyFileDurable(from: string, to: string): Promise<void> {
  const tmp = `${to}.tmp-${process.pid}`;
  try {
    const src = await open(from, 'r');
    const dst = await open(tmp, 'w', 0o600);
    try {
      const buf = Buffer.allocUnsafe(1 << 20);
      for (;;) {
        const { bytesRead } = await src.read(buf, 0, buf.length);
        if (bytesRead === 0) break;
        await dst.write(buf, 0, bytesRead);
      }
      await dst.sync();
    } finally {
      await Promise.all([src.close(), dst.close()]);
    }
    await rename(tmp, to);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(path.dirname(to));
}

/**
 * Sequential reads over a byte stream that arrives in chunks: small fixed-size reads (element headers,
 * short values), skips that only count, and `take`, which passes a long value on as sub-slices of the
 * incoming chunks. Nothing is ever allocated by a length read from the data except through `read`, which
 * is capped.
 */
export class TruncatedError extends Error {
  constructor(what: string) {
    super(`the object ends early: ${what}`);
    this.name = 'TruncatedError';
  }
}

const EMPTY = Buffer.alloc(0);
/** The largest single `read`; longer values are skipped or taken. */
export const MAX_READ = 64 * 1024;

export class ByteReader {
  /** Bytes consumed so far. */
  position = 0;
  private chunk: Buffer = EMPTY;
  private at = 0;
  private ended = false;
  private readonly it: AsyncIterator<Buffer>;

  constructor(source: AsyncIterable<Buffer>) {
    this.it = source[Symbol.asyncIterator]();
  }

  /** Exactly n bytes (n ≤ MAX_READ); a view into the stream's chunk when it holds them all. */
  async read(n: number, what = 'a value'): Promise<Buffer> {
    if (n > MAX_READ) throw new RangeError(`read of ${n} bytes refused (at most ${MAX_READ})`);
    if (this.chunk.length - this.at >= n) {
      const b = this.chunk.subarray(this.at, this.at + n);
      this.at += n;
      this.position += n;
      return b;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      if (!(await this.fill())) throw new TruncatedError(`inside ${what}`);
      const k = Math.min(n - filled, this.chunk.length - this.at);
      this.chunk.copy(out, filled, this.at, this.at + k);
      this.at += k;
      filled += k;
    }
    this.position += n;
    return out;
  }

  async skip(n: number, what = 'a value'): Promise<void> {
    let left = n;
    while (left > 0) {
      if (!(await this.fill())) throw new TruncatedError(`inside ${what}`);
      const k = Math.min(left, this.chunk.length - this.at);
      this.at += k;
      this.position += k;
      left -= k;
    }
  }

  /** The next n bytes, passed on as they arrive (each slice must be used before asking for the next). */
  async *take(n: number, what = 'a value'): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (!(await this.fill())) throw new TruncatedError(`inside ${what}`);
      const k = Math.min(left, this.chunk.length - this.at);
      const slice = this.chunk.subarray(this.at, this.at + k);
      this.at += k;
      this.position += k;
      left -= k;
      yield slice;
    }
  }

  /** Everything up to the end of the stream, as it arrives. */
  async *rest(): AsyncGenerator<Buffer> {
    while (await this.fill()) {
      const slice = this.chunk.subarray(this.at);
      this.position += slice.length;
      this.at = this.chunk.length;
      yield slice;
    }
  }

  async atEnd(): Promise<boolean> {
    return !(await this.fill());
  }

  /** Stops reading: the source (e.g. a PACS response) is released. */
  async close(): Promise<void> {
    this.ended = true;
    this.chunk = EMPTY;
    this.at = 0;
    await this.it.return?.();
  }

  private async fill(): Promise<boolean> {
    while (this.at >= this.chunk.length) {
      if (this.ended) return false;
      const r = await this.it.next();
      if (r.done) {
        this.ended = true;
        return false;
      }
      this.chunk = r.value;
      this.at = 0;
    }
    return true;
  }
}

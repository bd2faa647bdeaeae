import { once } from 'node:events';
import { checkAborted } from '../errors.js';

/** Headers, padding and small files are gathered up to this much before a write: a system call each cost more than the copy. */
const GATHER = 64 * 1024;

/**
 * Where a dump goes (standard output or a file), written with backpressure: a write waits until
 * the reader has taken what is queued, so memory holds at most a chunk or so, whatever is dumped.
 */
export class Sink {
  /** Bytes written so far (gathered ones included). */
  written = 0;
  private gathered: Uint8Array[] = [];
  private gatheredBytes = 0;

  constructor(
    private readonly stream: NodeJS.WritableStream,
    private readonly signal: AbortSignal,
  ) {}

  async write(data: Uint8Array): Promise<void> {
    this.written += data.length;
    if (this.gatheredBytes + data.length < GATHER) {
      this.gathered.push(data);
      this.gatheredBytes += data.length;
      return;
    }
    await this.flush();
    await this.put(data);
  }

  /** Writes what is gathered; called at the end. */
  async flush(): Promise<void> {
    if (this.gatheredBytes === 0) return;
    const data = Buffer.concat(this.gathered, this.gatheredBytes);
    this.gathered = [];
    this.gatheredBytes = 0;
    await this.put(data);
  }

  private async put(data: Uint8Array): Promise<void> {
    checkAborted(this.signal);
    if (this.stream.write(data)) return;
    // Stopped while a slow reader has not taken the last chunk: the stop is the reason, not the wait.
    await once(this.stream, 'drain', { signal: this.signal }).catch((err: unknown) => {
      checkAborted(this.signal);
      throw err;
    });
  }
}

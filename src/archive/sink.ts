import { once } from 'node:events';
import { checkAborted } from '../errors.js';

/**
 * Where a dump goes (standard output or a file), written with backpressure: a write waits until
 * the reader has taken what is queued, so memory holds at most a chunk or so, whatever is dumped.
 */
export class Sink {
  /** Bytes written so far. */
  written = 0;

  constructor(
    private readonly stream: NodeJS.WritableStream,
    private readonly signal: AbortSignal,
  ) {}

  async write(data: Uint8Array): Promise<void> {
    checkAborted(this.signal);
    this.written += data.length;
    if (this.stream.write(data)) return;
    // Stopped while a slow reader has not taken the last chunk: the stop is the reason, not the wait.
    await once(this.stream, 'drain', { signal: this.signal }).catch((err: unknown) => {
      checkAborted(this.signal);
      throw err;
    });
  }
}

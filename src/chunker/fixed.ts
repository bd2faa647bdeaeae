import type { Chunker } from './chunker.js';

/**
 * Fixed-size chunks from the start of the stream. For a block device, chunks then line up
 * with its blocks, so rewriting a block changes exactly one chunk and nothing shifts.
 */
export class FixedChunker implements Chunker {
  readonly params: { readonly max: number };

  constructor(size: number) {
    if (!Number.isSafeInteger(size) || size < 512) throw new RangeError(`fixed chunk size must be at least 512, got ${size}`);
    this.params = { max: size };
  }

  cut(_buf: Uint8Array, start: number, end: number): number {
    return Math.min(this.params.max, end - start);
  }
}

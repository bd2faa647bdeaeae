/** Cuts a stream into chunks; FastCDC (content-defined) and FixedChunker (block-aligned) are the two. */
export interface Chunker {
  readonly params: { readonly max: number };
  /**
   * Length of the chunk that starts at buf[start], looking at no byte at or past `end`.
   * The caller guarantees end - start >= max unless the input ends at `end`.
   */
  cut(buf: Uint8Array, start: number, end: number): number;
}

export type ChunkerKind = 'cdc' | 'fixed';

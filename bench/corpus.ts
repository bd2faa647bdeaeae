/** Inputs for the chunker's bench: incompressible bytes and text shaped like source code. */
import { randomFillSync } from 'node:crypto';

import { prng } from './lib.js';

/** A Buffer, as the archiver passes, so that a bench runs the production path. */
export function randomData(size: number): Buffer {
  const data = Buffer.allocUnsafe(size);
  // randomFillSync caps a single call at 2^31 - 1 bytes; 64 MiB slices stay well under.
  for (let off = 0; off < size; off += 64 << 20) randomFillSync(data, off, Math.min(64 << 20, size - off));
  return data;
}

/**
 * Lines of tab-indented words from a vocabulary of 4096, drawn with a heavy skew towards a
 * few (as identifiers and keywords are): few distinct bytes and many repeated runs, where a
 * gear hash's bits are least like random ones. The same seed gives the same bytes.
 */
export function textLike(size: number, seed: number): Buffer {
  const rng = prng(seed);
  const letters = 'etaoinshrdlcumwfgypbvkjxqz_';
  const vocabulary = Array.from({ length: 4096 }, () =>
    Buffer.from(Array.from({ length: 2 + Math.floor(rng() * 10) }, () => letters[Math.floor(letters.length * rng() ** 2)]).join('')),
  );
  const punctuation = [' ', ' ', ' ', ', ', '(', ') ', '; ', ' = ', '->', '.'].map((p) => Buffer.from(p));
  const out = Buffer.allocUnsafe(size + 256);
  let at = 0;
  while (at < size) {
    at += out.write('\t'.repeat(Math.floor(rng() * 4)), at);
    for (let words = 3 + Math.floor(rng() * 10); words > 0; words--) {
      at += vocabulary[Math.floor(vocabulary.length * rng() ** 4)]!.copy(out, at);
      at += punctuation[Math.floor(punctuation.length * rng())]!.copy(out, at);
    }
    out[at++] = 0x0a;
  }
  return out.subarray(0, size);
}

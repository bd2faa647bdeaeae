import { createRequire } from 'node:module';

/** The chunker's search loop and its PRF, implemented in gear.c, built by node-gyp at install. */
interface GearBinding {
  /**
   * The first position p in [hashStart, windowEnd) (relative to buf[start]) where the rolling
   * gear hash passes the cut test with the table's masks before avg (p < centerEnd) or after
   * (see FastCDC.table, gear-search.h); -1 if none.
   */
  gearCut(table: BigUint64Array, buf: Uint8Array, start: number, hashStart: number, centerEnd: number, windowEnd: number): number;
  /** SipHash-2-4 of `message` under a 16-byte key, as the 64-bit word the paper's vectors read little-endian. */
  sipHash24(key: Uint8Array, message: Uint8Array): bigint;
}

const require = createRequire(import.meta.url);
// dist/src/native/gear.js → build/Release at the package root
export const gear: GearBinding = require('../../../build/Release/scrate_gear.node');

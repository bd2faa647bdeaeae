import { createRequire } from 'node:module';

/** FastCDC's search loop, implemented in gear.c, built by node-gyp at install. */
interface GearBinding {
  /**
   * The first position p in [hashStart, windowEnd) (relative to buf[start]) where the rolling
   * gear hash passes table[256] (p < centerEnd) or table[257] (after); -1 if none.
   */
  gearCut(table: BigUint64Array, buf: Uint8Array, start: number, hashStart: number, centerEnd: number, windowEnd: number): number;
}

const require = createRequire(import.meta.url);
// dist/src/native/gear.js → build/Release at the package root
export const gear: GearBinding = require('../../../build/Release/scrate_gear.node');

import { randomFillSync } from 'node:crypto';
import { performance } from 'node:perf_hooks';

import { FastCDC, type ChunkerParams } from '../src/chunker/fastcdc.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const SIZE = 256 * MiB;
const RUNS = 7;

const sets: [string, ChunkerParams][] = [
  ['repository default 512K/1M/8M', { min: 512 * KiB, avg: MiB, max: 8 * MiB, seed: 0x5eed5eed5eed5eedn }],
  ['small 16K/64K/256K', { min: 16 * KiB, avg: 64 * KiB, max: 256 * KiB, seed: 0x5eed5eed5eed5eedn }],
];

// A Buffer, as the archiver passes, so that the bench runs the production path (V8 compiles
// element access per receiver class).
const data = Buffer.allocUnsafe(SIZE);
// randomFillSync caps a single call at 2^31 - 1 bytes; 64 MiB slices stay well under.
for (let off = 0; off < SIZE; off += 64 * MiB) randomFillSync(data, off, Math.min(64 * MiB, SIZE - off));

const gear = randomFillSync(new Int32Array(256));
/** 12 bits, so that hits are as rare as at the default's candidate test. */
const baselineMask = 0x67537000;

/**
 * The least a gear chunker written in JavaScript must do: roll a 32-bit gear hash over every
 * byte and stop where it passes a mask, without verifying candidates (the loop FastCDC.cut ran
 * before its search moved to src/native/gear.c). The machine is shared and noisy, so each
 * FastCDC run is reported relative to a baseline run just before it. FastCDC does not hash the
 * first `min` bytes of a chunk, which also helps it beat this.
 */
function nextHit(buf: Buffer, p: number, g: Int32Array, m: number, state: Int32Array): number {
  let h = state[0];
  let hit = -1;
  // `| 0` as in cut's loop: wrap-free int32 positions spare V8 an overflow check per index.
  for (const end = buf.length - 3; p < end; p = (p + 4) | 0) {
    h = ((h << 1) + g[buf[p]]) | 0;
    if ((h & m) === 0) { hit = p; break; }
    h = ((h << 1) + g[buf[(p + 1) | 0]]) | 0;
    if ((h & m) === 0) { hit = p + 1; break; }
    h = ((h << 1) + g[buf[(p + 2) | 0]]) | 0;
    if ((h & m) === 0) { hit = p + 2; break; }
    h = ((h << 1) + g[buf[(p + 3) | 0]]) | 0;
    if ((h & m) === 0) { hit = p + 3; break; }
  }
  state[0] = h;
  return hit;
}

function baseline(buf: Buffer, g: Int32Array, m: number): number {
  const state = new Int32Array(1);
  let hits = 0;
  for (let p = nextHit(buf, 0, g, m, state); p >= 0; p = nextHit(buf, p + 1, g, m, state)) hits++;
  return hits;
}

function pass(chunker: FastCDC): number {
  let chunks = 0;
  for (let off = 0; off < SIZE; chunks++) off += chunker.cut(data, off, SIZE);
  return chunks;
}

/** MB/s of one call of f over the whole buffer. */
function rate(f: () => unknown): number {
  const t0 = performance.now();
  f();
  return SIZE / 1e6 / ((performance.now() - t0) / 1e3);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const range = (xs: number[], digits: number): string =>
  `min ${Math.min(...xs).toFixed(digits)}, max ${Math.max(...xs).toFixed(digits)}`;

const chunkers = sets.map(([, params]) => new FastCDC(params));
// Warm-up, so that the timed runs measure optimised code.
baseline(data, gear, baselineMask);
const chunkCounts = chunkers.map(pass);

const baseRates: number[] = [];
const rates: number[][] = sets.map(() => []);
const ratios: number[][] = sets.map(() => []);
for (let i = 0; i < RUNS; i++) {
  chunkers.forEach((chunker, k) => {
    const base = rate(() => baseline(data, gear, baselineMask));
    const r = rate(() => pass(chunker));
    baseRates.push(base);
    rates[k].push(r);
    ratios[k].push(r / base);
  });
}

console.log(`FastCDC cut over ${SIZE / MiB} MiB of random data in a Buffer, median of ${RUNS} runs (MB = 10^6 bytes)`);
console.log(`${'baseline: gear loop, no checks'.padEnd(32)} ${median(baseRates).toFixed(0).padStart(6)} MB/s  (${range(baseRates, 0)})`);
sets.forEach(([name], k) => {
  console.log(
    `${name.padEnd(32)} ${median(rates[k]).toFixed(0).padStart(6)} MB/s  ` +
      `${median(ratios[k]).toFixed(2)}x baseline (${range(ratios[k], 2)}; ` +
      `${chunkCounts[k]} chunks, mean ${(SIZE / chunkCounts[k] / KiB).toFixed(0)} KiB)`,
  );
});

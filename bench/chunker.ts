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

const data = new Uint8Array(SIZE);
// randomFillSync caps a single call at 2^31 - 1 bytes; 64 MiB slices stay well under.
for (let off = 0; off < SIZE; off += 64 * MiB) randomFillSync(data, off, Math.min(64 * MiB, SIZE - off));

function pass(chunker: FastCDC): number {
  let chunks = 0;
  for (let off = 0; off < SIZE; chunks++) off += chunker.cut(data, off, SIZE);
  return chunks;
}

console.log(`FastCDC cut over ${SIZE / MiB} MiB of random data, median of ${RUNS} runs (MB = 10^6 bytes)`);
for (const [name, params] of sets) {
  const chunker = new FastCDC(params);
  const chunks = pass(chunker); // warm-up, so the timed runs measure optimized code
  const rates: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    pass(chunker);
    rates.push(SIZE / 1e6 / ((performance.now() - t0) / 1e3));
  }
  rates.sort((a, b) => a - b);
  const median = rates[RUNS >> 1];
  console.log(
    `${name.padEnd(32)} ${median.toFixed(0).padStart(6)} MB/s  ` +
      `(min ${rates[0].toFixed(0)}, max ${rates[RUNS - 1].toFixed(0)}; ${chunks} chunks, mean ${(SIZE / chunks / KiB).toFixed(0)} KiB)`,
  );
}

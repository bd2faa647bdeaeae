/**
 * The chunker's throughput, keyed (a repository's) against unkeyed (FastCDC as the reference),
 * on random data and on text, for the repository's default sizes and smaller ones. The machine
 * is shared and noisy: keyed and unkeyed run one after the other in each round, in alternating
 * order, and the keyed cost is the median of the per-round ratios.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';

import { FastCDC, type ChunkerParams } from '../src/chunker/fastcdc.js';
import { randomData, textLike } from './corpus.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const SIZE = 256 * MiB;
const ROUNDS = 7;

const sets: [string, ChunkerParams][] = [
  ['default 512K/1M/8M', { min: 512 * KiB, avg: MiB, max: 8 * MiB }],
  ['small 16K/64K/256K', { min: 16 * KiB, avg: 64 * KiB, max: 256 * KiB }],
];
const corpora: [string, Buffer][] = [
  ['random', randomData(SIZE)],
  ['text', textLike(SIZE, 1)],
];
const key = randomBytes(32);

function pass(chunker: FastCDC, data: Buffer): number {
  let chunks = 0;
  for (let off = 0; off < data.length; chunks++) off += chunker.cut(data, off, data.length);
  return chunks;
}

/** GB/s (10^9 bytes) of one pass. */
function rate(chunker: FastCDC, data: Buffer): number {
  const t0 = performance.now();
  pass(chunker, data);
  return data.length / 1e9 / ((performance.now() - t0) / 1e3);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

console.log(`Chunker throughput over ${SIZE / MiB} MiB in a Buffer, median of ${ROUNDS} rounds (GB = 10^9 bytes)`);
console.log('corpus  sizes                 unkeyed GB/s  keyed GB/s  keyed/unkeyed (range)   mean chunk unkeyed/keyed');
for (const [corpus, data] of corpora) {
  for (const [name, params] of sets) {
    const unkeyed = new FastCDC(params);
    const keyed = new FastCDC({ ...params, key });
    // Warm-up, and the chunk counts.
    const counts = [pass(unkeyed, data), pass(keyed, data)];
    const rates: [number[], number[]] = [[], []];
    const ratios: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 ? [1, 0] : [0, 1];
      const r = [0, 0];
      for (const k of order) r[k] = rate(k ? keyed : unkeyed, data);
      rates[0].push(r[0]!);
      rates[1].push(r[1]!);
      ratios.push(r[1]! / r[0]!);
    }
    const meanKiB = counts.map((n) => (data.length / n / KiB).toFixed(0)).join('/');
    console.log(
      `${corpus.padEnd(7)} ${name.padEnd(21)} ${median(rates[0]).toFixed(2).padStart(12)} ${median(rates[1]).toFixed(2).padStart(11)}  ` +
        `${median(ratios).toFixed(3)} (${Math.min(...ratios).toFixed(3)}-${Math.max(...ratios).toFixed(3)})`.padEnd(24) +
        `${meanKiB} KiB`,
    );
  }
}

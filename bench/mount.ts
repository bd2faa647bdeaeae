/**
 * Issue #23: reading through `scrate mount` against `scrate dump` and `restic mount`, on the same
 * data: one large file (half incompressible, half text-like, so both decryption and
 * decompression count) and a tree of many files. Per run and tool, in a fresh mount (no page
 * cache or blob cache left from the run before; the repositories' files are in the page cache
 * for all): the large file read whole in order (`cat`), and the tree read whole
 * (`tar cf - | cat`; GNU tar skips the contents of an archive it sees is /dev/null).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/mount.js
 *   env: BENCH_DIR (/var/tmp/scrate-bench), BENCH_RUNS (3), BENCH_MOUNT_FILE_MIB (1024),
 *        BENCH_MOUNT_TREE (BENCH_DIR/pristine, the kernel tree of bench/run.ts, if there; else /usr/include)
 *
 * bench/run.ts runs it at its end with BENCH_MOUNT=1. Needs root (FUSE mounts), restic and
 * fuse2's fusermount (restic mounts through it).
 */
import { spawn as spawnChild } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { randomData, textLike } from './corpus.js';
import { quote, shell, spawn, type Run } from './lib.js';

const PASSWORD = 'bench-password';
const MiB = 1024 * 1024;
/** Blocks of the large file: random and text-like in turn. */
const BLOCK = 8 * MiB;

export interface MountBenchOptions {
  dir: string;
  runs: number;
  /** bin/scrate of the build to measure. */
  scrate: string;
  fileBytes: number;
  tree: string;
}

interface Reading {
  file: number;
  tree: number;
}

/** The large file, made once (the same bytes for every run and tool). */
function makeLargeFile(file: string, bytes: number): void {
  if (fs.existsSync(file) && fs.statSync(file).size === bytes) return;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const fd = fs.openSync(file, 'w');
  try {
    for (let at = 0, i = 0; at < bytes; at += BLOCK, i++) {
      const n = Math.min(BLOCK, bytes - at);
      fs.writeSync(fd, i % 2 === 0 ? randomData(n) : textLike(n, i));
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Seconds a shell pipeline takes. */
function seconds(script: string, env?: NodeJS.ProcessEnv): number {
  const start = performance.now();
  spawn({ cmd: 'bash', args: ['-o', 'pipefail', '-c', script], env });
  return (performance.now() - start) / 1000;
}

function isMounted(dir: string): boolean {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((line) => line.split(' ')[4] === dir);
}

/** Runs `run` (a mount command) in the background while `use` reads from `dir` once `ready` holds; then ends it with SIGINT. */
async function whileMounted<T>(run: Run, dir: string, ready: () => boolean, use: () => T): Promise<T> {
  const child = spawnChild(run.cmd, run.args, { env: { ...process.env, ...run.env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  try {
    const deadline = Date.now() + 120_000;
    while (!(isMounted(dir) && ready())) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${run.cmd} mount did not come up: ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return use();
  } finally {
    child.kill('SIGINT');
    await exited;
    if (isMounted(dir)) shell(`umount -l ${quote(dir)}`);
  }
}

/** Median of the runs. */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export async function mountBench(o: MountBenchOptions): Promise<void> {
  const data = path.join(o.dir, 'mount-data');
  const file = path.join(data, 'large.bin');
  const mnt = path.join(o.dir, 'mount-point');
  const scrateRepo = path.join(o.dir, 'mount-scrate-repo');
  const resticRepo = path.join(o.dir, 'mount-restic-repo');
  makeLargeFile(file, o.fileBytes);
  fs.mkdirSync(mnt, { recursive: true });
  // Key derivation is not what is measured: a fast one keeps it out of dump's time.
  const scrateEnv = { SCRATE_PASSWORD: PASSWORD, SCRATE_REPOSITORY: scrateRepo, SCRATE_KDF_MS: '50' };
  const resticEnv = { RESTIC_PASSWORD: PASSWORD, RESTIC_REPOSITORY: resticRepo, RESTIC_CACHE_DIR: path.join(o.dir, 'mount-restic-cache') };
  const scrate = (...args: string[]): Run => ({ cmd: o.scrate, args, env: scrateEnv });
  const restic = (...args: string[]): Run => ({ cmd: 'restic', args, env: resticEnv });
  for (const repo of [scrateRepo, resticRepo]) fs.rmSync(repo, { recursive: true, force: true });
  console.log(`\n## Mount: reading ${(o.fileBytes / MiB).toFixed(0)} MiB of one file and the tree ${o.tree} (${shell(`du -sh ${quote(o.tree)} | cut -f1`).trim()})`);
  spawn(scrate('init', '-q'));
  spawn(scrate('backup', '-q', data, o.tree));
  spawn(restic('init', '-q'));
  spawn(restic('backup', '-q', data, o.tree));

  const inMount = (root: string) => ({ file: path.join(root, file), tree: path.join(root, o.tree) });
  const read = (at: { file: string; tree: string }): Reading => ({
    file: seconds(`cat ${quote(at.file)} > /dev/null`),
    tree: seconds(`tar cf - -C ${quote(at.tree)} . | cat > /dev/null`),
  });
  const samples = { scrateMount: [] as Reading[], resticMount: [] as Reading[], dump: [] as number[], open: [] as number[] };
  for (let r = 0; r < o.runs; r++) {
    const latest = path.join(mnt, 'snapshots', 'latest');
    samples.dump.push(seconds(`${quote(o.scrate)} dump latest ${quote(file)} > /dev/null`, scrateEnv));
    // What dump spends before it reads (start, key, index, snapshot list): mount spends it before it is mounted.
    samples.open.push(seconds(`${quote(o.scrate)} snapshots -q > /dev/null`, scrateEnv));
    samples.scrateMount.push(await whileMounted(scrate('mount', mnt), mnt, () => fs.existsSync(latest), () => read(inMount(latest))));
    samples.resticMount.push(await whileMounted(restic('mount', mnt), mnt, () => fs.existsSync(latest), () => read(inMount(latest))));
    const [s, t] = [samples.scrateMount.at(-1)!, samples.resticMount.at(-1)!];
    console.log(`  run ${r + 1}: dump ${samples.dump.at(-1)!.toFixed(2)} s; scrate mount file ${s.file.toFixed(2)} s, tree ${s.tree.toFixed(2)} s; restic mount file ${t.file.toFixed(2)} s, tree ${t.tree.toFixed(2)} s`);
  }
  const mbps = (s: number) => `${(o.fileBytes / MiB / s).toFixed(0)} MiB/s`;
  const dump = median(samples.dump);
  const stream = dump - median(samples.open);
  const mountFile = median(samples.scrateMount.map((s) => s.file));
  const resticFile = median(samples.resticMount.map((s) => s.file));
  const mountTree = median(samples.scrateMount.map((s) => s.tree));
  const resticTree = median(samples.resticMount.map((s) => s.tree));
  console.log('| read | time | throughput |');
  console.log('|---|---:|---:|');
  console.log(`| large file: scrate dump | ${dump.toFixed(2)} s | ${mbps(dump)} |`);
  console.log(`| large file: scrate mount | ${mountFile.toFixed(2)} s | ${mbps(mountFile)} |`);
  console.log(`| large file: restic mount | ${resticFile.toFixed(2)} s | ${mbps(resticFile)} |`);
  console.log(`| tree: scrate mount | ${mountTree.toFixed(2)} s | |`);
  console.log(`| tree: restic mount | ${resticTree.toFixed(2)} s | |`);
  console.log(`| large file: scrate dump less opening the repository | ${stream.toFixed(2)} s | ${mbps(stream)} |`);
  console.log(`(medians of ${o.runs}; opening = \`scrate snapshots\`)`);
  console.log(`scrate mount / scrate dump throughput, large file: ${(dump / mountFile).toFixed(2)}, against dump less opening ${(stream / mountFile).toFixed(2)} (target >= 0.80)`);
  console.log(`scrate mount / restic mount throughput: large file ${(resticFile / mountFile).toFixed(2)}, tree ${(resticTree / mountTree).toFixed(2)} (target > 1)`);
  for (const repo of [scrateRepo, resticRepo, resticEnv.RESTIC_CACHE_DIR]) fs.rmSync(repo, { recursive: true, force: true });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = path.resolve(process.env['BENCH_DIR'] || '/var/tmp/scrate-bench');
  const kernel = path.join(dir, 'pristine');
  await mountBench({
    dir,
    runs: Math.max(1, Number(process.env['BENCH_RUNS'] || 3)),
    scrate: fileURLToPath(new URL('../../bin/scrate', import.meta.url)),
    fileBytes: Number(process.env['BENCH_MOUNT_FILE_MIB'] || 1024) * MiB,
    tree: path.resolve(process.env['BENCH_MOUNT_TREE'] || (fs.existsSync(kernel) ? kernel : '/usr/include')),
  });
}

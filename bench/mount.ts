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
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { randomData, textLike } from './corpus.js';
import { cpuSeconds, median, quote, shell, spawn, type Run } from './lib.js';

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

/** Wall seconds, and CPU seconds of the program serving the read (the mount's server, or dump). */
interface Timing {
  seconds: number;
  cpu: number;
}

interface Reading {
  file: Timing;
  tree: Timing;
}

const cpuOf = (pid: number): number => cpuSeconds([pid]);

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

/** A shell pipeline's wall time, and the CPU time of `pid` meanwhile (none: of the pipeline itself). */
function timed(script: string, pid?: number, env?: NodeJS.ProcessEnv): Timing {
  const before = pid === undefined ? 0 : cpuOf(pid);
  const start = performance.now();
  const { stderr } = spawn({ cmd: '/usr/bin/time', args: ['-f', '%U %S', 'bash', '-o', 'pipefail', '-c', script], env });
  const seconds = (performance.now() - start) / 1000;
  if (pid !== undefined) return { seconds, cpu: cpuOf(pid) - before };
  const [user, sys] = stderr.trim().split('\n').at(-1)!.split(' ').map(Number);
  return { seconds, cpu: user! + sys! };
}

function isMounted(dir: string): boolean {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((line) => line.split(' ')[4] === dir);
}

/** Runs `run` (a mount command) in the background while `use` reads from `dir` once `ready` holds; then ends it with SIGINT. */
async function whileMounted<T>(run: Run, dir: string, ready: () => boolean, use: (pid: number) => T): Promise<T> {
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
    return use(child.pid!);
  } finally {
    child.kill('SIGINT');
    await exited;
    if (isMounted(dir)) shell(`umount -l ${quote(dir)}`);
  }
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
  const read = (at: { file: string; tree: string }, pid: number): Reading => ({
    file: timed(`cat ${quote(at.file)} > /dev/null`, pid),
    tree: timed(`tar cf - -C ${quote(at.tree)} . | cat > /dev/null`, pid),
  });
  const samples = { scrateMount: [] as Reading[], resticMount: [] as Reading[], dump: [] as Timing[], open: [] as Timing[] };
  const latest = path.join(mnt, 'snapshots', 'latest');
  const show = (t: Timing) => `${t.seconds.toFixed(2)} s (CPU ${t.cpu.toFixed(2)} s)`;
  for (let r = 0; r < o.runs; r++) {
    samples.dump.push(timed(`${quote(o.scrate)} dump latest ${quote(file)} > /dev/null`, undefined, scrateEnv));
    // What dump spends before it reads (start, key, index, snapshot list): mount spends it before it is mounted.
    samples.open.push(timed(`${quote(o.scrate)} snapshots -q > /dev/null`, undefined, scrateEnv));
    samples.scrateMount.push(await whileMounted(scrate('mount', mnt), mnt, () => fs.existsSync(latest), (pid) => read(inMount(latest), pid)));
    samples.resticMount.push(await whileMounted(restic('mount', mnt), mnt, () => fs.existsSync(latest), (pid) => read(inMount(latest), pid)));
    const [s, t] = [samples.scrateMount.at(-1)!, samples.resticMount.at(-1)!];
    console.log(`  run ${r + 1}: dump ${show(samples.dump.at(-1)!)}; scrate mount: file ${show(s.file)}, tree ${show(s.tree)}; restic mount: file ${show(t.file)}, tree ${show(t.tree)}; load ${os.loadavg()[0]!.toFixed(1)}`);
  }
  const med = (ts: Timing[]): Timing => ({ seconds: median(ts.map((t) => t.seconds)), cpu: median(ts.map((t) => t.cpu)) });
  const dump = med(samples.dump);
  const open = med(samples.open);
  const stream = { seconds: dump.seconds - open.seconds, cpu: dump.cpu - open.cpu };
  const mountFile = med(samples.scrateMount.map((s) => s.file));
  const resticFile = med(samples.resticMount.map((s) => s.file));
  const mountTree = med(samples.scrateMount.map((s) => s.tree));
  const resticTree = med(samples.resticMount.map((s) => s.tree));
  const row = (label: string, t: Timing, bytes?: number) =>
    console.log(`| ${label} | ${t.seconds.toFixed(2)} s | ${bytes ? `${(bytes / MiB / t.seconds).toFixed(0)} MiB/s` : ''} | ${t.cpu.toFixed(2)} s |`);
  console.log('| read | time | throughput | CPU of the reading server (user+sys) |');
  console.log('|---|---:|---:|---:|');
  row('large file: scrate dump', dump, o.fileBytes);
  row('large file: scrate dump less opening the repository', stream, o.fileBytes);
  row('large file: scrate mount', mountFile, o.fileBytes);
  row('large file: restic mount', resticFile, o.fileBytes);
  row('tree: scrate mount', mountTree);
  row('tree: restic mount', resticTree);
  console.log(`(medians of ${o.runs}; opening = \`scrate snapshots\`; the machine's other load changes wall times, CPU times less)`);
  const ratio = (a: number, b: number) => (a / b).toFixed(2);
  console.log(`scrate mount / scrate dump throughput, large file: ${ratio(dump.seconds, mountFile.seconds)}, against dump less opening ${ratio(stream.seconds, mountFile.seconds)} (target >= 0.80)`);
  console.log(`scrate mount / restic mount throughput: large file ${ratio(resticFile.seconds, mountFile.seconds)}, tree ${ratio(resticTree.seconds, mountTree.seconds)} (target > 1)`);
  console.log(`CPU per byte, restic mount / scrate mount: large file ${ratio(resticFile.cpu, mountFile.cpu)}, tree ${ratio(resticTree.cpu, mountTree.cpu)}`);
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

/**
 * Issue #4: scrate against restic (Debian's restic 0.14) on the same data in one run.
 *
 * Data: the Debian kernel source tree (linux-source-6.1, >1 GB, ~80k files) as version A, and
 * a deterministic "minor update" of it as version B (see planUpdate in lib.ts). Per tool and
 * run, in a fresh local repository with the data in the page cache: first backup of A, an
 * unchanged second backup, a backup of B on top, and a restore of B that is checked against
 * the tree; then both older snapshots are forgotten and the repository pruned (issue #21). Prints medians and scrate/restic ratios, and the blob index's memory per entry.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/run.js
 *   env: BENCH_DIR (/var/tmp/scrate-bench), BENCH_RUNS (3), BENCH_SEED (6101),
 *        BENCH_SCRATE_KDF_MS (scrate's default, 500), BENCH_BLOB_ENTRIES (10000000),
 *        BENCH_MOUNT=1: then also reading through `scrate mount` (bench/mount.ts, the kernel
 *        tree and a 1 GiB file; a few minutes more)
 *        BENCH_COPY=1: then also `scrate copy` against `restic copy` (bench/copy.ts; local and
 *        loopback S3 targets, BENCH_COPY_S3=0 for local only)
 *
 * Both tools derive their key as they would for a user: each calibrates scrypt at init to about
 * 500 ms (restic cannot be told otherwise), and every command pays for one derivation.
 *
 * Needs root (apt-get, and restores that keep owners).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { DEFAULT_KDF_MS } from '../src/repository/keys.js';
import { copyBench } from './copy.js';
import { mountBench } from './mount.js';

import {
  applyUpdate,
  compareTrees,
  duBytes,
  ensurePackages,
  listFiles,
  measureBlobIndex,
  planUpdate,
  sh,
  spawn,
  timed,
  treeStats,
  warmCache,
  type BlobIndexMemory,
  type Run,
  type Timing,
  type UpdatePlan,
} from './lib.js';

const PROJECT = fileURLToPath(new URL('../..', import.meta.url));
const TARBALL = '/usr/src/linux-source-6.1.tar.xz';
const PASSWORD = 'bench-password';
const MiB = 1024 * 1024;

interface Config {
  dir: string;
  runs: number;
  seed: number;
  scrateKdfMs: number;
  blobEntries: number;
}

function config(): Config {
  const num = (name: string, dflt: number): number => {
    const v = process.env[name];
    const n = v === undefined || v === '' ? dflt : Number(v);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a whole number, got ${v}`);
    return n;
  };
  return {
    dir: path.resolve(process.env['BENCH_DIR'] || '/var/tmp/scrate-bench'),
    runs: Math.max(1, num('BENCH_RUNS', 3)),
    seed: num('BENCH_SEED', 6101),
    scrateKdfMs: num('BENCH_SCRATE_KDF_MS', DEFAULT_KDF_MS),
    blobEntries: num('BENCH_BLOB_ENTRIES', 10_000_000),
  };
}

/** Fixed places under BENCH_DIR. Both tools back up `work`, so their snapshots have the same path. */
function layout(dir: string) {
  return {
    pristine: path.join(dir, 'pristine'),
    pristineDone: path.join(dir, 'pristine.done'),
    work: path.join(dir, 'src', 'linux'),
    repo: path.join(dir, 'repo'),
    restore: path.join(dir, 'restore'),
    resticCache: path.join(dir, 'restic-cache'),
    scrateBuild: path.join(dir, 'scrate-build'),
    scratch: path.join(dir, 'scratch'),
  };
}
type Layout = ReturnType<typeof layout>;

// ---------------------------------------------------------------------------------------------
// Tools

interface Tool {
  name: 'scrate' | 'restic';
  init(repo: string): Run;
  backup(repo: string, source: string): Run;
  /** Lists the snapshots: the cost of opening the repository (key derivation, index). */
  snapshots(repo: string): Run;
  restore(repo: string, source: string, target: string): Run;
  /** Forgets all snapshots but the newest. */
  forgetAllButLast(repo: string): Run;
  prune(repo: string): Run;
  /** Where `source`'s contents end up under `target`. */
  restoredRoot(target: string, source: string): string;
}

function scrateTool(build: string, kdfMs: number): Tool {
  const env = { SCRATE_PASSWORD: PASSWORD, SCRATE_KDF_MS: String(kdfMs) };
  const run = (repo: string, ...args: string[]): Run => ({ cmd: path.join(build, 'bin', 'scrate'), args: ['-r', repo, ...args], env });
  return {
    name: 'scrate',
    init: (repo) => run(repo, 'init', '-q'),
    backup: (repo, source) => run(repo, 'backup', '-q', source),
    snapshots: (repo) => run(repo, 'snapshots', '-q'),
    // "latest:/abs/path" restores that directory's contents directly into the target.
    restore: (repo, source, target) => run(repo, 'restore', `latest:${source}`, '--target', target, '-q'),
    forgetAllButLast: (repo) => run(repo, 'forget', '--keep-last', '1', '-q'),
    prune: (repo) => run(repo, 'prune', '-q'),
    restoredRoot: (target) => target,
  };
}

function resticTool(cacheDir: string): Tool {
  // The cache (restic's default behaviour) is kept per run, under BENCH_DIR, and removed with the repository.
  const env = { RESTIC_PASSWORD: PASSWORD, RESTIC_CACHE_DIR: cacheDir };
  const run = (repo: string, ...args: string[]): Run => ({ cmd: 'restic', args: ['-r', repo, ...args], env });
  return {
    name: 'restic',
    init: (repo) => run(repo, 'init', '--quiet'),
    // restic picks the parent snapshot itself: the latest one of the same host and paths.
    backup: (repo, source) => run(repo, 'backup', '--quiet', source),
    snapshots: (repo) => run(repo, 'snapshots', '--quiet'),
    // restic 0.14 has no "snapshot:subfolder"; it recreates the absolute path under the target.
    restore: (repo, _source, target) => run(repo, 'restore', 'latest', '--target', target, '--quiet'),
    forgetAllButLast: (repo) => run(repo, 'forget', '--keep-last', '1', '--quiet'),
    prune: (repo) => run(repo, 'prune', '--quiet'),
    restoredRoot: (target, source) => path.join(target, source),
  };
}

/**
 * A copy of scrate's build (bin, dist/src, native addon) made at start, so that a rebuild in
 * /work/main during the run cannot change the program half-way through the measurements.
 */
function freezeScrate(dest: string): void {
  fs.rmSync(dest, { recursive: true, force: true });
  fs.mkdirSync(path.join(dest, 'dist'), { recursive: true });
  fs.mkdirSync(path.join(dest, 'build', 'Release'), { recursive: true });
  fs.cpSync(path.join(PROJECT, 'bin'), path.join(dest, 'bin'), { recursive: true });
  fs.cpSync(path.join(PROJECT, 'dist', 'src'), path.join(dest, 'dist', 'src'), { recursive: true });
  for (const addon of fs.readdirSync(path.join(PROJECT, 'build', 'Release')).filter((f) => f.endsWith('.node'))) {
    fs.copyFileSync(path.join(PROJECT, 'build', 'Release', addon), path.join(dest, 'build', 'Release', addon));
  }
  fs.copyFileSync(path.join(PROJECT, 'package.json'), path.join(dest, 'package.json'));
  fs.symlinkSync(path.join(PROJECT, 'node_modules'), path.join(dest, 'node_modules'));
}

// ---------------------------------------------------------------------------------------------
// Data

/** Extracts the kernel tarball once; a marker file tells a finished extraction from an interrupted one. */
function preparePristine(l: Layout): void {
  if (fs.existsSync(l.pristineDone)) return;
  console.log(`extracting ${TARBALL} (once) ...`);
  const tmp = `${l.pristine}.tmp`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.rmSync(l.pristine, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  sh('tar', 'xJf', TARBALL, '-C', tmp, '--strip-components=1');
  fs.renameSync(tmp, l.pristine);
  fs.writeFileSync(l.pristineDone, `${TARBALL}\n`);
}

/**
 * Every measurement starts from a fresh copy of A at the same path. B is then made by editing
 * that copy in place, as `patch` or `git pull` would: untouched files keep their inode and
 * ctime, so both tools' change detection sees a real update. (A `cp -a A B` would give every
 * file of B a new inode and ctime, and both tools would re-read all of it.)
 */
function resetWork(l: Layout): void {
  removeTree(path.dirname(l.work));
  fs.mkdirSync(path.dirname(l.work), { recursive: true });
  sh('cp', '-a', l.pristine, l.work);
  settle();
  warmCache(l.work);
}

/**
 * On ext4 without a journal (this project's machines), a new inode skips every free one deleted
 * in the last 60 s (`recently_deleted` in fs/ext4/ialloc.c), at a buffer lookup each: a restore
 * soon after a tree of 80k files was removed spent most of its time there, whichever tool ran.
 * Trees are removed through here, and a restore starts only once that window has passed.
 */
const INODE_REUSE_MS = 61_000;
let lastTreeRemoved = 0;

function removeTree(dir: string): void {
  if (!fs.existsSync(dir)) return;
  fs.rmSync(dir, { recursive: true, force: true });
  settle();
  lastTreeRemoved = performance.now();
}

function awaitInodeReuse(): void {
  const wait = lastTreeRemoved + INODE_REUSE_MS - performance.now();
  if (wait > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, wait);
}

/** Writes dirty pages back now, so that writeback of one step does not land in the next step's time. */
function settle(): void {
  sh('sync');
}

// ---------------------------------------------------------------------------------------------
// Measurements

interface Sample {
  first: Timing;
  repoSize: number;
  second: Timing;
  secondAdded: number;
  open: Timing;
  updated: Timing;
  updatedAdded: number;
  restore: Timing;
  restoreEntries: number;
  mtimeDiffs: number;
  /** After forgetting A and the unchanged backup (two of three snapshots): the prune. */
  prune: Timing;
  afterPrune: number;
}

async function measure(tool: Tool, l: Layout, plan: UpdatePlan): Promise<Sample> {
  resetWork(l);
  for (const d of [l.repo, l.restore, l.resticCache]) removeTree(d);
  const t = (run: Run): Timing => {
    const r = timed(run, l.scratch);
    settle();
    return r;
  };
  spawn(tool.init(l.repo));
  settle();

  const first = t(tool.backup(l.repo, l.work));
  const repoSize = duBytes(l.repo);
  const second = t(tool.backup(l.repo, l.work));
  const afterSecond = duBytes(l.repo);
  const open = t(tool.snapshots(l.repo));

  applyUpdate(l.work, plan);
  settle();
  warmCache(l.work);
  const updated = t(tool.backup(l.repo, l.work));
  const updatedAdded = duBytes(l.repo) - afterSecond;

  fs.mkdirSync(l.restore);
  awaitInodeReuse();
  const restore = t(tool.restore(l.repo, l.work, l.restore));
  const verified = await verifyRestore(tool, l);
  spawn(tool.forgetAllButLast(l.repo));
  settle();
  const prune = t(tool.prune(l.repo));
  const afterPrune = duBytes(l.repo);
  for (const d of [l.repo, l.resticCache]) removeTree(d);
  return { first, repoSize, second, secondAdded: afterSecond - repoSize, open, updated, updatedAdded, restore, ...verified, prune, afterPrune };
}

/** The restored tree must equal B as it is on disk; anything else stops the benchmark. */
async function verifyRestore(tool: Tool, l: Layout): Promise<{ restoreEntries: number; mtimeDiffs: number }> {
  const root = tool.restoredRoot(l.restore, l.work);
  const c = await compareTrees(l.work, root);
  if (c.errors.length > 0) {
    const cmd = tool.restore(l.repo, l.work, l.restore);
    throw new Error(
      `${tool.name}: restore does not match B (${c.errors.length} differences) after: ${[cmd.cmd, ...cmd.args].join(' ')}\n` +
        c.errors.slice(0, 30).join('\n'),
    );
  }
  removeTree(l.restore);
  return { restoreEntries: c.entries, mtimeDiffs: c.mtimeDiffs };
}

// ---------------------------------------------------------------------------------------------
// Output

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

interface Metric {
  label: string;
  pick: (s: Sample) => number;
  fmt: (v: number) => string;
}

const secs = (v: number): string => `${v.toFixed(2)} s`;
const mib = (v: number): string => `${(v / MiB).toFixed(1)} MiB`;
/** Sizes that may be tiny (what an unchanged backup adds) keep their digits in KiB. */
const size = (v: number): string => (Math.abs(v) >= MiB ? mib(v) : `${(v / 1024).toFixed(1)} KiB`);

const METRICS: Metric[] = [
  { label: 'first backup of A: time', pick: (s) => s.first.seconds, fmt: secs },
  { label: 'first backup of A: CPU (user+sys)', pick: (s) => s.first.cpuSeconds, fmt: secs },
  { label: 'first backup of A: peak RSS', pick: (s) => s.first.peakRss, fmt: mib },
  { label: 'repository size after A', pick: (s) => s.repoSize, fmt: mib },
  { label: 'unchanged 2nd backup: time', pick: (s) => s.second.seconds, fmt: secs },
  { label: 'unchanged 2nd backup: bytes added', pick: (s) => s.secondAdded, fmt: size },
  { label: 'backup of B on top: time', pick: (s) => s.updated.seconds, fmt: secs },
  { label: 'backup of B: bytes added', pick: (s) => s.updatedAdded, fmt: mib },
  { label: 'backup of B: peak RSS', pick: (s) => s.updated.peakRss, fmt: mib },
  { label: 'restore of B: time', pick: (s) => s.restore.seconds, fmt: secs },
  { label: 'restore of B: CPU (user+sys)', pick: (s) => s.restore.cpuSeconds, fmt: secs },
  { label: 'restore of B: peak RSS', pick: (s) => s.restore.peakRss, fmt: mib },
  { label: 'open + list snapshots: time', pick: (s) => s.open.seconds, fmt: secs },
  { label: 'prune after forgetting 2 of 3: time', pick: (s) => s.prune.seconds, fmt: secs },
  { label: 'prune: peak RSS', pick: (s) => s.prune.peakRss, fmt: mib },
  { label: 'repository size after prune', pick: (s) => s.afterPrune, fmt: mib },
];

function printTable(samples: Record<Tool['name'], Sample[]>): void {
  console.log('| metric | scrate | restic | scrate/restic |');
  console.log('|---|---:|---:|---:|');
  for (const m of METRICS) {
    const cell = (name: Tool['name']): [number, string] => {
      const vs = samples[name].map(m.pick);
      const range = vs.length > 1 ? ` (${m.fmt(Math.min(...vs))}–${m.fmt(Math.max(...vs))})` : '';
      return [median(vs), `${m.fmt(median(vs))}${range}`];
    };
    const [a, as] = cell('scrate');
    const [b, bs] = cell('restic');
    const ratio = b === 0 ? (a === 0 ? '–' : '∞') : (a / b).toFixed(2);
    console.log(`| ${m.label} | ${as} | ${bs} | ${ratio} |`);
  }
  console.log('(medians; min–max over the runs in parentheses)');
}

function printSample(run: number, name: string, s: Sample): void {
  console.log(
    `  run ${run} ${name.padEnd(6)}: A ${secs(s.first.seconds)} (CPU ${secs(s.first.cpuSeconds)}) ${mib(s.first.peakRss)} RSS -> repo ${mib(s.repoSize)}; ` +
      `unchanged ${secs(s.second.seconds)} (+${size(s.secondAdded)}); B ${secs(s.updated.seconds)} (+${mib(s.updatedAdded)}); ` +
      `restore ${secs(s.restore.seconds)} (CPU ${secs(s.restore.cpuSeconds)}), verified ${s.restoreEntries} entries` +
      (s.mtimeDiffs ? `, ${s.mtimeDiffs} files with a different mtime` : '') +
      `; open ${secs(s.open.seconds)}; prune ${secs(s.prune.seconds)} (${mib(s.prune.peakRss)} RSS) -> ${mib(s.afterPrune)}; load ${os.loadavg()[0]!.toFixed(2)}`,
  );
}

function printMachine(l: Layout, kdfMs: number): void {
  const cpu = /^model name\s*:\s*(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  const dirty = sh('git', '-C', PROJECT, 'status', '--porcelain').trim();
  console.log('## Machine and versions');
  console.log(`- ${sh('nproc').trim()} cores, ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Linux ${os.release()}`);
  console.log(`- disk: ${sh('df', '-hT', path.dirname(l.repo)).trim().split('\n')[1]?.replace(/\s+/g, ' ')}`);
  console.log(`- ${sh('restic', 'version').trim()}`);
  console.log(`- node ${process.version}`);
  console.log(
    `- scrate ${sh('git', '-C', PROJECT, 'rev-parse', '--short', 'HEAD').trim()}` +
      (dirty ? ` + uncommitted changes (${dirty.split('\n').length} paths)` : '') +
      `, build frozen at start; SCRATE_KDF_MS=${kdfMs} at init (restic calibrates its own KDF to ~500 ms)`,
  );
}

// ---------------------------------------------------------------------------------------------
// Blob index (child process)

/** Runs in a child `node --expose-gc`, so its gigabyte of arrays never shares a heap with the timed part. */
function blobIndexInChild(entries: number): BlobIndexMemory {
  const out = execFileSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--blob-index', String(entries)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return JSON.parse(out.trim().split('\n').at(-1)!) as BlobIndexMemory;
}

function printBlobIndex(m: BlobIndexMemory): void {
  console.log(`## Blob index: ${m.entries.toLocaleString('en')} random IDs in packs of 10,000 (${secs(m.seconds)} to add)`);
  console.log('| measure | bytes per blob |');
  console.log('|---|---:|');
  console.log(`| arrayBuffers delta (after gc) | ${m.arrayBuffersPerBlob.toFixed(1)} |`);
  console.log(`| rss delta (after gc) | ${m.rssPerBlob.toFixed(1)} |`);
  console.log(`| JS heap delta | ${m.heapPerBlob.toFixed(1)} |`);
  console.log(`| index arrays (memoryBytes) | ${m.arraysPerBlob.toFixed(1)} |`);
  console.log(`| peak rss over the empty process (during growth) | ${m.peakRssPerBlob.toFixed(1)} |`);
  const worst = Math.max(m.arrayBuffersPerBlob, m.rssPerBlob);
  console.log(`target <= 100 bytes per blob: ${worst <= 100 ? 'met' : 'NOT met'} (${worst.toFixed(1)})`);
}

// ---------------------------------------------------------------------------------------------

async function runAll(cfg: Config, l: Layout, tools: Tool[], plan: UpdatePlan): Promise<Record<Tool['name'], Sample[]>> {
  const samples: Record<Tool['name'], Sample[]> = { scrate: [], restic: [] };
  for (let r = 0; r < cfg.runs; r++) {
    // Alternate the order, so that drift on the machine does not always favour one tool.
    const order = r % 2 === 0 ? tools : [...tools].reverse();
    for (const tool of order) {
      const s = await measure(tool, l, plan);
      samples[tool.name].push(s);
      printSample(r + 1, tool.name, s);
    }
  }
  return samples;
}

async function main(): Promise<void> {
  if (process.argv[2] === '--blob-index') {
    console.log(JSON.stringify(measureBlobIndex(Number(process.argv[3]), 10_000)));
    return;
  }
  const started = performance.now();
  const cfg = config();
  const l = layout(cfg.dir);
  fs.mkdirSync(l.scratch, { recursive: true });

  ensurePackages([
    { pkg: 'restic', marker: '/usr/bin/restic' },
    { pkg: 'linux-source-6.1', marker: TARBALL },
    { pkg: 'time', marker: '/usr/bin/time' },
  ]);
  preparePristine(l);
  freezeScrate(l.scrateBuild);
  printMachine(l, cfg.scrateKdfMs);

  const stats = treeStats(l.pristine);
  console.log(`\n## Data\n- A: ${TARBALL} extracted: ${(stats.bytes / 1e9).toFixed(2)} GB in ${stats.files} files, ${stats.dirs} directories, ${stats.symlinks} symlinks`);
  if (stats.bytes < 1e9 || stats.files < 70_000) throw new Error('the kernel tree is smaller than expected (>= 1 GB, ~80k files)');
  const plan = planUpdate(listFiles(l.pristine), cfg.seed);
  console.log(
    `- B: A with a synthetic minor update (seed ${cfg.seed}, same every run): ${plan.patched.length} .c/.h files patched (1-3 hunks of 1-4 lines), ` +
      `${plan.rewritten.length} rewritten (30% of lines changed), ${plan.added.length} added (derived from existing files), ${plan.deleted.length} deleted; ` +
      'applied in place to the backed-up tree, so both tools see B at the same path as A',
  );

  console.log('\n## Blob index memory (child process)');
  printBlobIndex(blobIndexInChild(cfg.blobEntries));

  console.log(`\n## Runs (${cfg.runs} per tool, alternating; fresh repository each; data in page cache)`);
  const tools = [scrateTool(l.scrateBuild, cfg.scrateKdfMs), resticTool(l.resticCache)];
  const samples = await runAll(cfg, l, tools, plan);
  console.log(`\n## Results: ${path.basename(l.work)} at ${l.work}, A ${(stats.bytes / 1e9).toFixed(2)} GB`);
  printTable(samples);
  if (process.env['BENCH_MOUNT'] === '1') {
    await mountBench({ dir: cfg.dir, runs: cfg.runs, scrate: path.join(l.scrateBuild, 'bin', 'scrate'), fileBytes: 1024 * MiB, tree: l.pristine });
  }
  if (process.env['BENCH_COPY'] === '1') {
    await copyBench({ dir: cfg.dir, runs: cfg.runs, scrate: path.join(l.scrateBuild, 'bin', 'scrate'), tree: l.pristine, seed: cfg.seed, s3: process.env['BENCH_COPY_S3'] !== '0' });
  }
  console.log(`\ntotal time of the benchmark: ${((performance.now() - started) / 60_000).toFixed(1)} min`);
}

await main();

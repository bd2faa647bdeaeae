/**
 * Helpers of bench/run.ts (scrate against restic): running timed commands, preparing the
 * data (kernel tree and a deterministic "minor update" of it), comparing trees after a
 * restore, and measuring the blob index's memory per entry.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

import { BlobIndex } from '../src/repository/blob-index.js';
import { BlobType, type PackEntry } from '../src/repository/pack.js';

// ---------------------------------------------------------------------------------------------
// Commands

export interface Run {
  cmd: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export class CommandError extends Error {
  constructor(run: Run, status: number | null, stderr: string) {
    const envs = Object.entries(run.env ?? {})
      .filter(([k]) => (k.startsWith('SCRATE_') || k.startsWith('RESTIC_')) && !k.endsWith('PASSWORD'))
      .map(([k, v]) => `${k}=${v} `)
      .join('');
    super(`command failed (exit ${status}): ${envs}${[run.cmd, ...run.args].join(' ')}\n--- stderr ---\n${stderr.trimEnd()}`);
  }
}

/** Runs a command to completion; a failure carries the command line and its stderr. */
export function spawn(run: Run): { stdout: string; stderr: string } {
  const r = spawnSync(run.cmd, run.args, {
    env: { ...process.env, ...run.env },
    cwd: run.cwd,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new CommandError(run, r.status, r.stderr);
  return { stdout: r.stdout, stderr: r.stderr };
}

/** Runs a command and returns its stdout; throws with its stderr when it fails. */
export function sh(cmd: string, ...args: string[]): string {
  return spawn({ cmd, args }).stdout;
}

export function shell(script: string): string {
  return sh('bash', '-o', 'pipefail', '-c', script);
}

export interface Timing {
  seconds: number;
  /** Peak resident set size of the command in bytes. */
  peakRss: number;
  /** User + system CPU seconds: with wall time, shows whether a tool is CPU-bound or waiting. */
  cpuSeconds: number;
}

/**
 * Wall time and peak RSS through GNU time, which takes them from wait4() and so counts
 * the whole process (all threads) without our own process in between; -o keeps its line
 * apart from the command's stderr.
 */
export function timed(run: Run, scratch: string): Timing {
  const out = path.join(scratch, 'time.out');
  spawn({ ...run, cmd: '/usr/bin/time', args: ['-f', '%e %M %U %S', '-o', out, run.cmd, ...run.args] });
  const [e, m, u, s] = fs.readFileSync(out, 'utf8').trim().split(/\s+/).slice(-4).map(Number);
  return { seconds: e!, peakRss: m! * 1024, cpuSeconds: u! + s! };
}

/** Installs the Debian packages whose marker file is missing. */
export function ensurePackages(wanted: { pkg: string; marker: string }[]): void {
  const missing = wanted.filter((w) => !fs.existsSync(w.marker)).map((w) => w.pkg);
  if (missing.length === 0) return;
  console.log(`installing ${missing.join(' ')} (apt-get)`);
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  // The package lists may be absent or stale on a fresh machine.
  spawn({ cmd: 'apt-get', args: ['update', '-qq'], env });
  spawn({ cmd: 'apt-get', args: ['install', '-y', '-qq', ...missing], env });
}

/** Bytes on disk as du counts them (apparent sizes), the usual "repository size". */
export function duBytes(dir: string): number {
  return Number(sh('du', '-sb', dir).split('\t')[0]);
}

/**
 * Reads every file once so the data is in the page cache. Not `tar cf /dev/null`: GNU tar
 * notices a /dev/null archive and skips reading file contents.
 */
export function warmCache(dir: string): number {
  return Number(shell(`tar cf - -C ${quote(dir)} . | wc -c`).trim());
}

/** Median of the runs (the mean of the middle two for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const CLOCK_TICKS = Number(sh('getconf', 'CLK_TCK').trim());

/** User + system CPU seconds the processes (all their threads) used so far. */
export function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    // After the command, which may hold spaces: state, then utime and stime as fields 12 and 13.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / CLOCK_TICKS;
}

export function quote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

// ---------------------------------------------------------------------------------------------
// Trees

export interface TreeStats {
  files: number;
  dirs: number;
  symlinks: number;
  bytes: number;
}

/** Relative paths of all regular files, sorted so that anything derived from them is deterministic. */
export function listFiles(root: string): string[] {
  const out: string[] = [];
  walk(root, '', (rel, d) => {
    if (d.isFile()) out.push(rel);
  });
  return out.sort();
}

export function treeStats(root: string): TreeStats {
  const s: TreeStats = { files: 0, dirs: 0, symlinks: 0, bytes: 0 };
  walk(root, '', (rel, d) => {
    if (d.isDirectory()) s.dirs++;
    else if (d.isSymbolicLink()) s.symlinks++;
    else if (d.isFile()) {
      s.files++;
      s.bytes += fs.lstatSync(path.join(root, rel)).size;
    }
  });
  return s;
}

function walk(root: string, rel: string, visit: (rel: string, d: fs.Dirent) => void): void {
  for (const d of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${d.name}` : d.name;
    visit(r, d);
    if (d.isDirectory()) walk(root, r, visit);
  }
}

export interface Comparison {
  /** Mismatches in names, types, modes, sizes, contents or link targets: a failed restore. */
  errors: string[];
  /** Regular files whose mtime differs (ms resolution): reported, not fatal. */
  mtimeDiffs: number;
  entries: number;
}

/**
 * Compares a restored tree with its source: the same names, file types, permission bits,
 * contents and symlink targets everywhere below the roots (the roots' own metadata is that
 * of the directory we created as target).
 */
export async function compareTrees(expected: string, actual: string): Promise<Comparison> {
  const c: Comparison = { errors: [], mtimeDiffs: 0, entries: 0 };
  const files: string[] = [];
  compareDir(expected, actual, '', c, files);
  await pool(files, 8, async (rel) => {
    const [a, b] = await Promise.all([fs.promises.readFile(path.join(expected, rel)), fs.promises.readFile(path.join(actual, rel))]);
    if (!a.equals(b)) c.errors.push(`${rel}: contents differ`);
  });
  return c;
}

function compareDir(expected: string, actual: string, rel: string, c: Comparison, files: string[]): void {
  const names = (dir: string): string[] => fs.readdirSync(path.join(dir, rel)).sort();
  const want = names(expected);
  const got = names(actual);
  const gotSet = new Set(got);
  const wantSet = new Set(want);
  for (const n of want) if (!gotSet.has(n)) c.errors.push(`${join(rel, n)}: missing in restore`);
  for (const n of got) if (!wantSet.has(n)) c.errors.push(`${join(rel, n)}: extra in restore`);
  for (const n of want) {
    if (!gotSet.has(n)) continue;
    const r = join(rel, n);
    const a = fs.lstatSync(path.join(expected, r));
    const b = fs.lstatSync(path.join(actual, r));
    c.entries++;
    if ((a.mode & 0o170000) !== (b.mode & 0o170000)) {
      c.errors.push(`${r}: type differs`);
      continue;
    }
    if (!a.isSymbolicLink() && (a.mode & 0o7777) !== (b.mode & 0o7777)) {
      c.errors.push(`${r}: mode ${(a.mode & 0o7777).toString(8)} restored as ${(b.mode & 0o7777).toString(8)}`);
    }
    if (a.isDirectory()) compareDir(expected, actual, r, c, files);
    else if (a.isSymbolicLink()) {
      const [ta, tb] = [fs.readlinkSync(path.join(expected, r)), fs.readlinkSync(path.join(actual, r))];
      if (ta !== tb) c.errors.push(`${r}: link target ${ta} restored as ${tb}`);
    } else if (a.isFile()) {
      if (a.size !== b.size) c.errors.push(`${r}: size ${a.size} restored as ${b.size}`);
      else files.push(r);
      if (Math.floor(a.mtimeMs) !== Math.floor(b.mtimeMs)) c.mtimeDiffs++;
    }
  }
}

function join(rel: string, name: string): string {
  return rel ? `${rel}/${name}` : name;
}

async function pool<T>(items: T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: width }, lane));
}

// ---------------------------------------------------------------------------------------------
// A "minor update" of the kernel tree

/** mulberry32: tiny, seedable, and good enough to pick files and lines reproducibly. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function int(rng: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

function shuffled<T>(items: readonly T[], rng: () => number): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

export interface UpdatePlan {
  seed: number;
  /** Small patches: a few hunks of inserted/replaced lines, as in a stable point release. */
  patched: string[];
  /** Substantial rewrites: lines changed throughout the file (a refactored driver). */
  rewritten: string[];
  /** New files, each derived from an existing file (new drivers start as copies). */
  added: { path: string; donor: string }[];
  deleted: string[];
}

export interface UpdateCounts {
  patched: number;
  rewritten: number;
  added: number;
  deleted: number;
  /** Sum of the sizes of the patched, rewritten and added files after the update. */
  bytesTouched: number;
}

/**
 * Picks the files a kernel point release would touch: ~2% of all files patched (.c/.h),
 * 300 rewritten, 200 added, 100 deleted. Only the sorted file list and the seed decide,
 * so every run applies the same update.
 */
export function planUpdate(files: readonly string[], seed: number): UpdatePlan {
  const rng = prng(seed);
  const sources = shuffled(
    files.filter((f) => /\.[ch]$/.test(f)),
    rng,
  );
  const nPatch = Math.round(files.length * 0.02);
  const patched = sources.slice(0, nPatch);
  const rewritten = sources.slice(nPatch, nPatch + 300);
  const deleted = sources.slice(nPatch + 300, nPatch + 400);
  const donors = sources.slice(nPatch + 400, nPatch + 600);
  const added = donors.map((donor, i) => ({
    path: path.posix.join(path.posix.dirname(donor), `bench-new-${i}${path.posix.extname(donor)}`),
    donor,
  }));
  return { seed, patched, rewritten, added, deleted };
}

/** Applies the plan in place (same inodes for untouched files, as `patch` or `git pull` would leave them). */
export function applyUpdate(root: string, plan: UpdatePlan): UpdateCounts {
  const counts: UpdateCounts = { patched: 0, rewritten: 0, added: 0, deleted: 0, bytesTouched: 0 };
  const write = (rel: string, text: string): void => {
    fs.writeFileSync(path.join(root, rel), text, 'latin1');
    counts.bytesTouched += Buffer.byteLength(text, 'latin1');
  };
  const read = (rel: string): string => fs.readFileSync(path.join(root, rel), 'latin1');
  // latin1 both ways maps bytes 1:1, so lines we do not touch keep their exact bytes.
  // Each file gets its own generator, so a change to one file's edit does not shift the others.
  plan.patched.forEach((rel, i) => {
    write(rel, patchText(read(rel), prng(plan.seed ^ (0x10000 + i))));
    counts.patched++;
  });
  plan.rewritten.forEach((rel, i) => {
    write(rel, rewriteText(read(rel), prng(plan.seed ^ (0x20000 + i)), 0.3));
    counts.rewritten++;
  });
  plan.added.forEach(({ path: rel, donor }, i) => {
    write(rel, `// SPDX-License-Identifier: GPL-2.0\n/* derived from ${donor} */\n` + rewriteText(read(donor), prng(plan.seed ^ (0x30000 + i)), 0.5));
    counts.added++;
  });
  for (const rel of plan.deleted) {
    fs.rmSync(path.join(root, rel));
    counts.deleted++;
  }
  return counts;
}

function fixLine(rng: () => number): string {
  const n = int(rng, 1, 99999);
  const kinds = [
    `\tif (unlikely(!dev))\n\t\treturn -ENODEV; /* fix ${n} */`,
    `\tpr_debug("%s: quirk ${n} applied\\n", __func__);`,
    `\t/* stable backport ${n.toString(16)}: check the length before use */`,
    `\tWARN_ON_ONCE(ret < 0 && ret != -EAGAIN); /* ${n} */`,
  ];
  return kinds[int(rng, 0, kinds.length - 1)]!;
}

/** 1-3 hunks, each replacing 0-2 lines by 1-4 new ones at a random position. */
function patchText(text: string, rng: () => number): string {
  const lines = text.split('\n');
  for (let h = int(rng, 1, 3); h > 0; h--) {
    const at = int(rng, 0, lines.length - 1);
    const fresh = Array.from({ length: int(rng, 1, 4) }, () => fixLine(rng));
    lines.splice(at, Math.min(int(rng, 0, 2), lines.length - at), ...fresh);
  }
  return lines.join('\n');
}

/** Changes a fraction of all lines (renamed identifiers, reindented, annotated). */
function rewriteText(text: string, rng: () => number, fraction: number): string {
  return text
    .split('\n')
    .map((line) => {
      if (rng() >= fraction || line.length === 0) return line;
      const r = rng();
      if (r < 0.4) return line.replace(/\b([a-z]\w{3,})\b/, '$1_v2');
      if (r < 0.7) return line.replace(/^\t/, '\t\t');
      return `${line} /* ${int(rng, 0, 0xffff).toString(16)} */`;
    })
    .join('\n');
}

// ---------------------------------------------------------------------------------------------
// Blob index memory

export interface BlobIndexMemory {
  entries: number;
  seconds: number;
  /** Deltas over the empty state, after a full GC, in bytes per entry. */
  rssPerBlob: number;
  arrayBuffersPerBlob: number;
  heapPerBlob: number;
  /** What the index itself says its arrays hold. */
  arraysPerBlob: number;
  /** Peak RSS of the whole process (growth copies the arrays) per entry. */
  peakRssPerBlob: number;
}

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (!g) throw new Error('run with node --expose-gc');
  g();
  g();
}

/**
 * Adds `total` random IDs in packs of `perPack` and measures the memory it took. Entries
 * are made per pack and dropped after addPack (the index copies IDs into its own arrays), as
 * when the index files are loaded one by one.
 */
export function measureBlobIndex(total: number, perPack: number): BlobIndexMemory {
  gc();
  const before = process.memoryUsage();
  const index = new BlobIndex();
  const t0 = performance.now();
  for (let added = 0; added < total; added += perPack) {
    const n = Math.min(perPack, total - added);
    const ids = randomBytes(n * 32);
    const entries: PackEntry[] = [];
    let offset = 5 + 32;
    for (let i = 0; i < n; i++) {
      const length = 300_000 + (i % 1000);
      entries.push({ type: BlobType.data, id: ids.subarray(i * 32, i * 32 + 32), offset, length, rawLength: length * 2, compressed: true });
      offset += length;
    }
    // 32 bytes: the envelope, an ephemeral X25519 public key.
    index.addPack({ id: randomBytes(32), type: BlobType.data, writer: 0, envelope: randomBytes(32) }, entries);
  }
  const seconds = (performance.now() - t0) / 1000;
  if (index.size !== total) throw new Error(`index holds ${index.size} entries, expected ${total}`);
  gc();
  const after = process.memoryUsage();
  const per = (b: number): number => b / total;
  return {
    entries: total,
    seconds,
    rssPerBlob: per(after.rss - before.rss),
    arrayBuffersPerBlob: per(after.arrayBuffers - before.arrayBuffers),
    heapPerBlob: per(after.heapUsed - before.heapUsed),
    arraysPerBlob: per(index.memoryBytes),
    peakRssPerBlob: per(process.resourceUsage().maxRSS * 1024 - before.rss),
  };
}

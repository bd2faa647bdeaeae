/**
 * CPU time of walking a tree the way a backup does (every entry lstat'ed, directories sorted by
 * name bytes): fs.readdirSync + fs.lstatSync({ bigint: true }) per entry against one
 * listDirectory call per directory (src/native/posix.c). Alternated, median of RUNS each; CPU
 * time rather than wall time, as the machine is shared. Usage: node dist/bench/walk.js [dir]
 */
import { lstatSync, readdirSync } from 'node:fs';
import { listDirectory } from '../src/archiver/dir-listing.js';

const ROOT = Buffer.from(process.argv[2] ?? '/var/tmp/scrate-bench/pristine');
const RUNS = 5;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;

function withFs(dir: Buffer): number {
  let n = 0;
  for (const name of readdirSync(dir, { encoding: 'buffer' }).sort(Buffer.compare)) {
    const full = Buffer.concat([dir, Buffer.from('/'), name]);
    n++;
    if (lstatSync(full, { bigint: true }).isDirectory()) n += withFs(full);
  }
  return n;
}

function withListDirectory(dir: Buffer): number {
  let n = 0;
  for (const { name, stat } of listDirectory(dir)) {
    n++;
    if (stat && (stat.mode & S_IFMT) === S_IFDIR) n += withListDirectory(Buffer.concat([dir, Buffer.from('/'), name]));
  }
  return n;
}

/** User and system CPU ms of one walk. */
function cpu(walk: (dir: Buffer) => number): { user: number; system: number; entries: number } {
  const c0 = process.cpuUsage();
  const entries = walk(ROOT);
  const c = process.cpuUsage(c0);
  return { user: c.user / 1000, system: c.system / 1000, entries };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const runs = { fs: [] as ReturnType<typeof cpu>[], native: [] as ReturnType<typeof cpu>[] };
for (let i = 0; i < RUNS; i++) {
  runs.fs.push(cpu(withFs));
  runs.native.push(cpu(withListDirectory));
}
console.log(`${ROOT}: ${runs.fs[0]!.entries} entries; CPU ms, median of ${RUNS}`);
for (const [name, rs] of Object.entries(runs)) {
  console.log(`${name.padEnd(7)} user ${median(rs.map((r) => r.user)).toFixed(0).padStart(5)}  system ${median(rs.map((r) => r.system)).toFixed(0).padStart(5)}  total ${median(rs.map((r) => r.user + r.system)).toFixed(0).padStart(5)}`);
}

/**
 * A small repository with a history, for crash and concurrency tests: packs of 64 KiB and
 * chunks of ~16 KiB (so that a backup of a megabyte makes a score of packs, each a point to
 * crash at), generations of a changing tree kept aside to compare restores with, and the CLI's
 * check and backup as a test needs them.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import type { ObjectType } from '../../src/backend/backend.js';
import { openBackend } from '../../src/backend/open.js';
import { saveLock } from '../../src/repository/lock.js';
import { Repository } from '../../src/repository/repository.js';
import { restore } from '../../src/restorer/restorer.js';
import { loadSnapshot } from '../../src/snapshot/snapshot.js';
import { backupSnapshotId, cliEnv, SCRATE, scrate, type RunResult } from './cli.js';
import { PASSWORD, TEST_KDF_MS } from './repo.js';
import { compareTrees, pseudoRandom } from './tree.js';

export const SMALL_PACKS = { packSize: 64 * 1024, chunker: { min: 4096, avg: 16 * 1024, max: 64 * 1024 } };

/** A repository with small packs at `location` (a directory, or s3:…), with the tests' password. */
export async function initSmallRepo(location: string): Promise<void> {
  await Repository.init(await openBackend(location), PASSWORD, { kdfMs: TEST_KDF_MS, ...SMALL_PACKS });
}

/** Opens the repository at `location` with the tests' (full) key, its index loaded. */
export async function openLocation(location: string): Promise<Repository> {
  const repo = await Repository.open(await openBackend(location), PASSWORD);
  await repo.loadIndex();
  return repo;
}

/**
 * A lock of this test process (alive, on this host), as a backup running beside a prune holds
 * one: a prune then only marks what is unused, and deletes only what was marked before this lock
 * was taken. Replaces the locks the repository had.
 */
export async function holdLock(location: string): Promise<string> {
  const repo = await Repository.open(await openBackend(location), PASSWORD);
  await removeLocks(location);
  return saveLock(repo, false);
}

/** Removes the lock objects named, or all. */
export async function removeLocks(location: string, which?: string[]): Promise<void> {
  const backend = await openBackend(location);
  for await (const { name } of backend.list('locks')) if (!which || which.includes(name)) await backend.remove('locks', name);
}

/**
 * Waits until `check` holds (polled: what it looks at changes in another process), or fails
 * after `timeoutMs` (generous: a loaded machine is slow, not wrong).
 */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** The names of a repository's objects of one type. */
export async function names(location: string, type: ObjectType): Promise<string[]> {
  const out: string[] = [];
  for await (const { name } of (await openBackend(location)).list(type)) out.push(name);
  return out.sort();
}

/** The CLI's environment for a repository initRepo made (its password, the KDF floor) with a cache directory of the test's own. */
export function repoEnv(repo: string, cache: string, extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  return cliEnv(repo, { SCRATE_PASSWORD: PASSWORD, XDG_CACHE_HOME: cache, ...extra });
}

/** Copies a directory as it is (modes, owners, times to the nanosecond, hard links). */
export function copyDir(from: string, to: string): void {
  fs.rmSync(to, { recursive: true, force: true });
  const r = spawnSync('cp', ['-a', from, to], { encoding: 'utf8' });
  assert.equal(r.status, 0, `cp -a ${from} ${to}: ${r.stderr}`);
}

const KiB = 1024;

/**
 * Turns `src` into generation `g` of a changing tree (called for 1, 2, 3… in order): files kept
 * from the first generation (with a symlink and hard links), a log that grows, a file edited in
 * place, a new file of `churn` bytes each generation (the one of two generations ago removed),
 * and a new empty directory.
 */
export function writeGeneration(src: string, g: number, churn = 1024 * KiB): void {
  const rnd = (label: string, length: number) => pseudoRandom(7, label, length);
  const at = (p: string) => path.join(src, p);
  if (g === 1) {
    for (const d of ['keep', 'grow', 'churn', 'edit', 'dirs']) fs.mkdirSync(at(d), { recursive: true });
    fs.writeFileSync(at('keep/a.bin'), rnd('keep-a', 200 * KiB));
    fs.writeFileSync(at('keep/b.txt'), 'plain text, compressible\n'.repeat(400));
    fs.symlinkSync('a.bin', at('keep/link'));
    fs.writeFileSync(at('keep/hard-1'), rnd('hard', 5000));
    fs.linkSync(at('keep/hard-1'), at('keep/hard-2'));
    fs.writeFileSync(at('edit/big.bin'), rnd('big', 400 * KiB));
  }
  fs.appendFileSync(at('grow/log.bin'), rnd(`log-${g}`, 100 * KiB));
  fs.writeFileSync(at(`churn/g${g}.bin`), rnd(`churn-${g}`, churn));
  fs.rmSync(at(`churn/g${g - 2}.bin`), { force: true });
  const fd = fs.openSync(at('edit/big.bin'), 'r+');
  fs.writeSync(fd, rnd(`edit-${g}`, 8 * KiB), 0, 8 * KiB, (g * 37 * KiB) % (392 * KiB));
  fs.closeSync(fd);
  fs.mkdirSync(at(`dirs/d${g}`));
}

/** A repository with small packs, the source directory backed up into it and a cache directory (below `base`), and the CLI's environment. */
export interface Workspace {
  base: string;
  location: string;
  source: string;
  cache: string;
  /** The full key's environment. */
  env: NodeJS.ProcessEnv;
}

/** A new workspace below `base`: its repository there too unless `location` says where (s3:…, with `env` to reach it). */
export async function newWorkspace(base: string, opts: { location?: string; env?: Record<string, string | undefined> } = {}): Promise<Workspace> {
  const location = opts.location ?? path.join(base, 'repo');
  const source = path.join(base, 'src');
  const cache = path.join(base, 'cache');
  fs.mkdirSync(source, { recursive: true });
  fs.mkdirSync(cache, { recursive: true });
  await initSmallRepo(location);
  return { base, location, source, cache, env: repoEnv(location, cache, opts.env) };
}

/** Turns the workspace's source into generation `g` (see writeGeneration) and keeps a copy aside; returns the copy. */
export function nextGeneration(w: Workspace, g: number, churn?: number): string {
  writeGeneration(w.source, g, churn);
  const kept = path.join(w.base, `gen-${g}`);
  copyDir(w.source, kept);
  return kept;
}

/** Backs up generations `gens` in turn (with `env`, the full key's by default); returns each snapshot's ID and the copy of the tree it holds. */
export function backUpGenerations(w: Workspace, gens: number[], env = w.env): Map<string, string> {
  const snapshots = new Map<string, string>();
  for (const g of gens) {
    const kept = nextGeneration(w, g);
    snapshots.set(backupCli(env, w.source), kept);
  }
  return snapshots;
}

/** `scrate backup <src> --json`; returns the snapshot's ID. */
export function backupCli(env: NodeJS.ProcessEnv, src: string, args: string[] = []): string {
  const r = scrate(['backup', src, '--json', ...args], env);
  assert.equal(r.code, 0, `backup: ${r.stderr}`);
  return backupSnapshotId(r.stdout);
}

/** Runs scrate to its end without blocking this process (so that a test can restore meanwhile). */
export async function scrateAsync(args: string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  const child = spawn(SCRATE, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code: code ?? 128, stdout, stderr };
}

/** `scrate check --read-data`: it must pass (packs no index lists are only a note). */
export async function assertChecks(env: NodeJS.ProcessEnv, when: string): Promise<RunResult> {
  const r = await scrateAsync(['check', '--read-data'], env);
  const lines = `${r.stdout}${r.stderr}`.trim().split('\n');
  assert.equal(r.code, 0, `${when}: check --read-data failed:\n${[...lines.slice(0, 6), ...(lines.length > 6 ? [`(${lines.length - 6} more lines)`] : [])].join('\n')}`);
  assert.match(r.stdout, /; 0 error\(s\)/, `${when}: ${r.stdout}`);
  return r;
}

/**
 * Restores each snapshot in `expected` (ID → the tree it holds), read with the repository's full
 * key, below a scratch target (the contents of `source` only), and lists every way each differs
 * from its tree; nothing when all are bit-exact.
 */
export async function restoreDiffs(location: string, expected: Map<string, string>, source: string, target: string): Promise<string[]> {
  const repo = await openLocation(location);
  const diffs: string[] = [];
  for (const [id, tree] of expected) {
    fs.rmSync(target, { recursive: true, force: true });
    const { snapshot, writer } = await loadSnapshot(repo, id);
    const errors: string[] = [];
    await restore(repo.reader(writer), snapshot, { target, subpath: source, onError: (p, m) => errors.push(`${p}: ${m}`) });
    diffs.push(...[...errors, ...compareTrees(tree, target)].map((d) => `snapshot ${id.slice(0, 8)}: ${d}`));
  }
  fs.rmSync(target, { recursive: true, force: true });
  return diffs;
}

/** Asserts that every snapshot in `expected` restores bit-exactly. */
export async function assertRestores(location: string, expected: Map<string, string>, source: string, scratchDir: string, when: string): Promise<void> {
  assert.deepEqual(await restoreDiffs(location, expected, source, path.join(scratchDir, 'restore')), [], `${when}: snapshots do not restore as backed up`);
}

/** `scrate key add --write-only --host <host>`: the environment the new key's backups run with (the same repository and cache). */
export function addWriteOnlyKey(env: NodeJS.ProcessEnv, dir: string, host: string): NodeJS.ProcessEnv {
  const file = path.join(dir, `write-only-password-${host}`);
  fs.writeFileSync(file, `write-only password of ${host}\n`);
  const r = scrate(['key', 'add', '--write-only', '--host', host, '--new-password-file', file], env);
  assert.equal(r.code, 0, `key add --write-only: ${r.stderr}`);
  return { ...env, SCRATE_PASSWORD: `write-only password of ${host}` };
}

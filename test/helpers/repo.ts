import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LocalBackend } from '../../src/backend/local.js';
import { BlobType } from '../../src/repository/pack.js';
import { Repository, type BlobReader, type InitOptions } from '../../src/repository/repository.js';
import { loadSnapshot } from '../../src/snapshot/snapshot.js';
import { findNode, walkTree } from '../../src/tree/walk.js';

/** A scratch directory removed by the returned cleanup. */
export function scratch(prefix: string): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `scrate-${prefix}-`));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

export const PASSWORD = 'correct horse battery staple';

/** Key derivation tuned down: tests open repositories hundreds of times. */
export const TEST_KDF_MS = 5;

export async function initRepo(dir: string, opts: InitOptions = {}): Promise<Repository> {
  return Repository.init(new LocalBackend(dir), PASSWORD, { kdfMs: TEST_KDF_MS, ...opts });
}

/** A local repository opened with its index loaded, or without (`index: false`: prune loads its own). */
export async function openRepo(dir: string, password = PASSWORD, opts: { index?: boolean } = {}): Promise<Repository> {
  const repo = await Repository.open(new LocalBackend(dir), password);
  if (opts.index !== false) await repo.loadIndex();
  return repo;
}

/** Every object file of a repository, relative to it (temp files included, so leaks show). */
export function listObjects(dir: string, sub = ''): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(dir, sub), { withFileTypes: true })) {
    const rel = path.join(sub, e.name);
    if (e.isDirectory()) out.push(...listObjects(dir, rel));
    else out.push(rel);
  }
  return out.sort();
}

/** Flips one bit of a file in place, at `at` bytes from its start (negative: from its end). */
export function flipByte(file: string, at: number): void {
  const buf = fs.readFileSync(file);
  const i = at < 0 ? buf.length + at : at;
  buf[i] = buf[i]! ^ 0x01;
  fs.writeFileSync(file, buf);
}

/** What reads the snapshots this repository's own key wrote (the tests' backups). */
export function own(repo: Repository): BlobReader {
  return repo.reader(repo.self);
}

/**
 * What a backup added besides its snapshot: data packs of its writer, and trees at or below
 * `source`, as a full key opening `dir` sees them. Trees of the directories above the source
 * are left out: they record /tmp and the like, which other processes change at any time.
 */
export async function addedBelow(dir: string, source: string, run: () => Promise<string>): Promise<{ dataPacks: number; trees: number }> {
  const before = await openRepo(dir);
  const id = await run();
  const after = await openRepo(dir);
  const { snapshot, writer } = await loadSnapshot(after, id);
  const reader = after.reader(writer);
  const earlier = before.writers.get(writer.id);
  const top = (await findNode(reader, Buffer.from(snapshot.tree, 'hex'), source))!.subtree!;
  const trees = [top];
  for await (const { node } of walkTree(reader, top)) if (node.subtree) trees.push(node.subtree);
  const fresh = trees.filter((t) => !earlier || !before.index.has(BlobType.tree, t, earlier.no));
  const dataPacks = (r: Repository, no: number | undefined) => r.index.packs.filter((p) => p.type === BlobType.data && p.writer === no).length;
  return { dataPacks: dataPacks(after, writer.no) - dataPacks(before, earlier?.no), trees: fresh.length };
}

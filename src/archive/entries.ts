import { IntegrityError, ScrateError } from '../errors.js';
import { isZeroBlob, locate } from '../restorer/content.js';
import type { BlobReader } from '../repository/repository.js';
import { displayName, type Node } from '../tree/node.js';
import { walkTree } from '../tree/walk.js';

/** One member of an archive: a node and its path inside the archive. */
export interface ArchiveEntry {
  /** Path components from the archive's root. */
  path: Buffer[];
  node: Node;
  /** An earlier member that is the same file (hard link): this one refers to it and carries no content. */
  linkTo?: Buffer[];
}

/** What a dump starts from: a snapshot's root tree (for "/"), or one node and its path. */
export type DumpStart = { tree: Buffer } | { node: Node; path: Buffer[] };

export interface EntryOptions {
  /**
   * Setuid/setgid bits cleared and device nodes left out, as a restore does for a snapshot of a
   * write-only writer (a host that may be compromised): extracting the archive as root must not
   * plant a setuid binary or a device.
   */
  unprivileged?: boolean;
  /** Told of what `unprivileged` changed: the first bits cleared, each device left out. */
  onNote?: (path: Buffer[], message: string) => void;
}

const SETUID_SETGID = 0o6000;

/**
 * The members of an archive, depth-first in name order, a directory before its contents. Paths
 * keep the dumped path's own components ("home/me/src/…" for /home/me/src), as restic's do.
 * Nodes that share a device and inode with an earlier one (link count above one) become hard
 * links to it; only those are remembered, by their first path.
 */
export async function* archiveEntries(reader: BlobReader, start: DumpStart, opts: EntryOptions = {}): AsyncGenerator<ArchiveEntry> {
  const firstNames = new Map<string, Buffer[]>();
  let clearedNoted = false;
  const entry = (path: Buffer[], node: Node): ArchiveEntry | undefined => {
    if (opts.unprivileged) {
      if (node.type === 'chardev' || node.type === 'blockdev') {
        opts.onNote?.(path, 'device node left out: the snapshot was written with a write-only key (--allow-privileged keeps it)');
        return undefined;
      }
      if (node.mode & SETUID_SETGID) {
        if (!clearedNoted) opts.onNote?.(path, 'setuid/setgid bits cleared, here and wherever else they are: the snapshot was written with a write-only key (--allow-privileged keeps them)');
        clearedNoted = true;
        node = { ...node, mode: node.mode & ~SETUID_SETGID };
      }
    }
    if (node.type === 'dir' || node.links <= 1) return { path, node };
    const key = `${node.deviceId}:${node.inode}`;
    const first = firstNames.get(key);
    if (first) return { path, node, linkTo: first };
    firstNames.set(key, path);
    return { path, node };
  };
  if ('node' in start) {
    const first = entry(start.path, start.node);
    if (first) yield first;
  }
  const tree = 'tree' in start ? start.tree : start.node.type === 'dir' ? start.node.subtree : undefined;
  if (!tree) return;
  for await (const { path, node } of walkTree(reader, tree, 'node' in start ? start.path : [])) {
    const next = entry(path, node);
    if (next) yield next;
  }
}

/** One blob of a file's content, where it lies in the file. */
export interface ContentBlob {
  id: Buffer;
  offset: number;
  length: number;
  /** The zero blob: known by its ID, never loaded. */
  zero: boolean;
  /** Bytes it takes in its pack: the repository's compression tells how compressible the file is. */
  stored: number;
}

/**
 * A file's content as the index describes it, without loading anything. Its length is the sum
 * of its blobs', which is what reading it gives, whatever size the node claims: an archive
 * member's header must state exactly the bytes that follow it.
 */
export function contentLayout(reader: BlobReader, node: Node): { blobs: ContentBlob[]; length: number } {
  // Its blocks are not a list; `restore --target FILE` writes it, sparse.
  if (node.blockMap) throw new ScrateError(`${displayName(node.name)} is a volume image: use restore --target FILE`);
  let offset = 0;
  const blobs = (node.content ?? []).map((id) => {
    const loc = locate(reader, id);
    const blob = { id, offset, length: loc.rawLength, zero: isZeroBlob(reader, id, loc), stored: loc.length };
    offset += loc.rawLength;
    return blob;
  });
  return { blobs, length: offset };
}

/** A loaded blob must be as long as the index said, or the member's stated size would be a lie. */
export function checkLength(blob: ContentBlob, data: Buffer): void {
  if (data.length !== blob.length) throw new IntegrityError(`blob ${blob.id.toString('hex').slice(0, 12)}`, `${data.length} bytes where the index says ${blob.length}`);
}

/** A path inside an archive: its components joined with '/'. */
export function archivePath(path: readonly Buffer[]): Buffer {
  const slash = Buffer.from('/');
  return Buffer.concat(path.flatMap((p, i) => (i === 0 ? [p] : [slash, p])));
}

/** Whole seconds of a time, rounded down: a time before 1970 with nanoseconds lies in the second before. */
export function unixSeconds(ns: bigint): bigint {
  const seconds = ns / 1_000_000_000n;
  return ns % 1_000_000_000n < 0n ? seconds - 1n : seconds;
}

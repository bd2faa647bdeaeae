import type { ObjectType } from '../backend/backend.js';

/**
 * The most bytes an object of each type may have when read whole: far above what scrate writes,
 * far below what would exhaust memory. Anything larger (planted, or damaged) is refused before
 * it is read, so no object in a repository can make a command run out of memory.
 */
export const MAX_OBJECT_BYTES: Record<Exclude<ObjectType, 'data'>, number> = {
  config: 64 * 1024,
  keys: 64 * 1024,
  writers: 1024 * 1024,
  locks: 64 * 1024,
  marks: 32 * 1024 * 1024,
  snapshots: 16 * 1024 * 1024,
  index: 256 * 1024 * 1024,
  volumes: 64 * 1024,
};

/** What an object's body may decompress to, at most (the largest stored object, an index file). */
export const MAX_OBJECT_PLAIN_BYTES = 256 * 1024 * 1024;

/** A blob larger than this is refused when read: no chunk comes near it, and it bounds what a planted index can make a reader allocate. */
export const MAX_BLOB_BYTES = 1024 * 1024 * 1024;

/**
 * A tree's plaintext at most: it is decoded as one string, and V8's strings end at 512 MiB. A
 * backup refuses to write a larger one (a directory of about a million entries).
 */
export const MAX_TREE_BYTES = 256 * 1024 * 1024;

/** A whole pack at most: a pack is closed past `packSize`, by its last blob. */
export function maxPackBytes(packSize: number): number {
  return packSize + MAX_BLOB_BYTES + 1024 * 1024;
}

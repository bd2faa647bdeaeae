import { randomBytes } from 'node:crypto';
import { ScrateError } from '../errors.js';
import { signingKey } from '../crypto/signing.js';
import type { Repository } from '../repository/repository.js';
import type { Writer } from '../repository/writers.js';

/** How blobs go over: as they are (identity), or re-chunked and renamed with the target's keys (translate). */
export type CopyMode = 'identity' | 'translate';

/**
 * Identity when the target took the source's chunker parameters and both key roots (init
 * --from-repo --copy-chunker-params): every writer names a blob with the same ID in both. A
 * write-only target key writes as its own writer only: identity when that writer names and
 * cuts blobs as the source's full writer does (`key add --share-full-keys`), whose snapshots it
 * then copies as they are; else its copies are re-chunked with its own keys.
 */
export function copyMode(src: Repository, dst: Repository): CopyMode {
  const a = src.chunking;
  if (!dst.canRead) return sameBlobKeys(src, src.writers.full!, dst, dst.self) ? 'identity' : 'translate';
  const b = dst.chunking;
  const same = sameSizes(src, dst) && a.roots.idRoot.equals(b.roots.idRoot) && a.roots.chunkerRoot.equals(b.roots.chunkerRoot);
  return same ? 'identity' : 'translate';
}

function sameSizes(src: Repository, dst: Repository): boolean {
  const a = src.config.chunker;
  const b = dst.config.chunker;
  return a.min === b.min && a.avg === b.avg && a.max === b.max;
}

/**
 * Whether writer `a` of `src` and writer `b` of `dst` cut and name blobs alike: then the same
 * file is the same blobs under the same IDs in both, and a copy moves blobs as they are.
 */
export function sameBlobKeys(src: Repository, a: Writer, dst: Repository, b: Writer): boolean {
  return sameSizes(src, dst) && a.chunkIdKey.equals(b.chunkIdKey) && a.chunkerKey !== undefined && b.chunkerKey !== undefined && a.chunkerKey.equals(b.chunkerKey);
}

/**
 * The target's writer for a source writer. A write-only target key: its own (what it may copy
 * is chosen in select.ts:copyable). A full key: the same ID (so, with shared roots, the same
 * blob keys); one the target does not know is registered there as the source registered it
 * (host, `keysOf`) but under a fresh signing key whose seed is dropped: the source host's key
 * gains no authority in the target, and copies are signed by the full writer, naming the
 * writer (as repaired snapshots do).
 */
export async function targetWriter(dst: Repository, source: Writer): Promise<Writer> {
  if (!dst.canRead) return dst.self;
  const known = dst.writers.get(source.id);
  if (known) return known;
  const record = {
    writer: source.hex,
    publicKey: signingKey(randomBytes(32)).public.toString('base64'),
    hostname: source.hostname ?? '',
    created: new Date().toISOString(),
    ...(source.keysOf && { keysOf: source.keysOf.toString('hex') }),
  };
  await dst.saveWriterRecord(record);
  dst.writers.load([record], (why) => {
    throw new ScrateError(`cannot register writer ${source.hex.slice(0, 8)} in ${dst.backend.location}: ${why}`);
  });
  return dst.writers.get(source.id)!;
}

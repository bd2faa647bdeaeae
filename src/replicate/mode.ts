import { randomBytes } from 'node:crypto';
import { ExitCode, ScrateError } from '../errors.js';
import { signingKey } from '../crypto/signing.js';
import type { Repository } from '../repository/repository.js';
import type { Writer } from '../repository/writers.js';

/** How blobs go over: as they are (identity), or re-chunked and renamed with the target's keys (translate). */
export type CopyMode = 'identity' | 'translate';

/**
 * Identity when the target took the source's chunker parameters and both key roots (init
 * --from-repo --copy-chunker-params): every writer names a blob with the same ID in both.
 * A write-only target key is refused.
 */
export function copyMode(src: Repository, dst: Repository): CopyMode {
  if (!dst.canRead) throw new ScrateError(`copying into ${dst.backend.location} with a write-only key is not supported yet`, ExitCode.fatal, 'use a full key of the target');
  const a = src.chunking;
  const b = dst.chunking;
  const same = a.chunker.min === b.chunker.min && a.chunker.avg === b.chunker.avg && a.chunker.max === b.chunker.max && a.roots.idRoot.equals(b.roots.idRoot) && a.roots.chunkerRoot.equals(b.roots.chunkerRoot);
  return same ? 'identity' : 'translate';
}

/**
 * The target's writer for a source writer: the same ID (so, with shared roots, the same blob
 * keys). One the target does not know is registered there under a fresh signing key whose seed
 * is dropped: the source host's key gains no authority in the target, and copies are signed by
 * the full writer, naming the writer (as repaired snapshots do).
 */
export async function targetWriter(dst: Repository, source: Writer): Promise<Writer> {
  const known = dst.writers.get(source.id);
  if (known) return known;
  const record = { writer: source.hex, publicKey: signingKey(randomBytes(32)).public.toString('base64'), hostname: source.hostname ?? '', created: new Date().toISOString() };
  await dst.saveWriterRecord(record);
  dst.writers.load([record], (why) => {
    throw new ScrateError(`cannot register writer ${source.hex.slice(0, 8)} in ${dst.backend.location}: ${why}`);
  });
  return dst.writers.get(source.id)!;
}

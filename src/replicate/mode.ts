import { randomBytes } from 'node:crypto';
import { ExitCode, ScrateError } from '../errors.js';
import { signingKey } from '../crypto/signing.js';
import type { Repository } from '../repository/repository.js';
import type { Writer } from '../repository/writers.js';

/**
 * Refuses what only a re-chunking copy could do: identity mode needs a full target key whose
 * repository took the source's chunker parameters and both key roots (init --from-repo
 * --copy-chunker-params), so that every writer names a blob with the same ID in both.
 */
export function requireIdentity(src: Repository, dst: Repository): void {
  if (!dst.canRead) throw new ScrateError(`copying into ${dst.backend.location} with a write-only key is not supported yet`, ExitCode.fatal, 'use a full key of the target');
  const a = src.chunking;
  const b = dst.chunking;
  const same = a.chunker.min === b.chunker.min && a.chunker.avg === b.chunker.avg && a.chunker.max === b.chunker.max && a.roots.idRoot.equals(b.roots.idRoot) && a.roots.chunkerRoot.equals(b.roots.chunkerRoot);
  if (!same)
    throw new ScrateError(
      `${dst.backend.location} does not share the chunker parameters of ${src.backend.location}: re-chunking copies are not supported yet`,
      ExitCode.fatal,
      'copy into a repository made with `scrate init --from-repo SRC --copy-chunker-params`',
    );
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

import { FULL_WRITER, newWriter } from '../crypto/access.js';
import { ExitCode, IntegrityError, ScrateError } from '../errors.js';
import { readKeyInfo, type KeyInfo } from './key-file.js';
import { addKey, listKeys } from './keys.js';
import type { Repository } from './repository.js';
import { ObjectKind } from './sealed-object.js';

/** Managing key files and writers: full keys only (Repository.keys.read). */

export interface KeyEntry {
  id: string;
  /** Null when the info does not open: not a key of this repository's. */
  info: KeyInfo | null;
}

function fullOnly(repo: Repository): NonNullable<Repository['keys']['read']> {
  const read = repo.keys.read;
  if (!read) throw new ScrateError('this key is write-only: only a full key manages keys');
  return read;
}

export async function listKeyEntries(repo: Repository, onSkipped?: (id: string, why: string) => void): Promise<KeyEntry[]> {
  const { seal } = fullOnly(repo);
  const keys = await listKeys(repo.backend, onSkipped);
  return keys.map(({ id, file }) => ({ id, info: readKeyInfo(file, seal) })).sort((a, b) => (a.info?.created ?? '').localeCompare(b.info?.created ?? ''));
}

/** A new full key: the same master secret under another password. */
export async function addFullKey(repo: Repository, password: string, kdfMs: number): Promise<string> {
  fullOnly(repo);
  return addKey(repo.backend, repo.keys, password, kdfMs, repo.keys.writer.signing);
}

/**
 * A new write-only key for `hostname`: a new writer, registered (a record signed by the admin
 * key, written first) so that full keys accept what it signs, then its key file.
 * `shareFullKeys`: the writer names and cuts blobs with the full writer's keys (docs/SECURITY.md §2).
 */
export async function addWriteOnlyKey(repo: Repository, password: string, kdfMs: number, hostname: string, shareFullKeys = false): Promise<{ keyId: string; writer: string }> {
  fullOnly(repo);
  const { keys, seed } = newWriter(repo.keys, hostname, shareFullKeys);
  const writer = keys.writer.id.toString('hex');
  await repo.saveWriterRecord({ writer, publicKey: keys.writer.signing.public.toString('base64'), hostname, created: new Date().toISOString(), ...(shareFullKeys && { keysOf: FULL_WRITER.toString('hex') }) });
  const keyId = await addKey(repo.backend, keys, password, kdfMs, repo.keys.writer.signing, { hostname, signingSeed: seed });
  return { keyId, writer };
}

/**
 * Removes a key file. Removing a write-only key revokes its writer first: the snapshots and
 * index files it signed until now stay accepted (listed in the revocation), anything it signs
 * later is refused. Never the key in use, never the last full key.
 */
export async function removeKey(repo: Repository, id: string): Promise<{ revoked?: string }> {
  const entries = await listKeyEntries(repo);
  const entry = entries.find((k) => k.id === id);
  if (!entry) throw new ScrateError(`no key ${id}`);
  if (id === repo.keyId) throw new ScrateError('refusing to remove the key in use', ExitCode.fatal, 'open the repository with another key to remove this one');
  if (entry.info?.access !== 'write-only' && entries.filter((k) => k.info?.access === 'full').length <= 1) throw new ScrateError('refusing to remove the last full key');
  let revoked: string | undefined;
  if (entry.info?.access === 'write-only') {
    revoked = entry.info.writer;
    await repo.saveWriterRecord({ writer: revoked, revoked: { time: new Date().toISOString(), snapshots: await signedBy(repo, 'snapshots', ObjectKind.snapshot, revoked), index: await signedBy(repo, 'index', ObjectKind.index, revoked) } });
  }
  await repo.backend.remove('keys', id);
  return { revoked };
}

/** The objects of a type that writer `hex` signed, as far as they load now. */
async function signedBy(repo: Repository, type: 'snapshots' | 'index', kind: ObjectKind, hex: string): Promise<string[]> {
  const names: string[] = [];
  for (const name of await repo.listNames(type)) {
    try {
      if ((await repo.loadObject(type, kind, name)).writer.hex === hex) names.push(name);
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err;
    }
  }
  return names;
}

import { randomBytes } from 'node:crypto';
import { x25519Keys, type X25519Keys } from './keybox.js';
import { deriveKey, KEY_BYTES } from './primitives.js';
import { signingKey, type SigningKey } from './signing.js';

/**
 * What a key file holds once its password opens it (docs/FORMAT.md §3).
 *
 * A full key holds one 32-byte master secret; every other secret derives from it, so full keys
 * read everything, sign as the repository (the admin key) and can derive any writer's keys.
 * A write-only key is one writer: its own signing key, its own blob-ID and chunker keys, the
 * lock key, and only the public halves of the repository's keys. Nothing it holds decrypts a
 * pack, a tree, an index or a snapshot, its own included.
 */
export const WRITER_ID_BYTES = 16;
/** The writer full keys write as. */
export const FULL_WRITER = Buffer.alloc(WRITER_ID_BYTES);

/** A writer's keys: it signs what it stores, names blobs and cuts chunks with keys of its own. */
export interface WriterSecrets {
  id: Buffer;
  signing: SigningKey;
  /** Keyed BLAKE3 of a blob's plaintext is its ID: dedup reaches only this writer's blobs. */
  chunkIdKey: Buffer;
  /** Keys the chunker's cut decision (src/chunker/fastcdc.ts). */
  chunkerKey: Buffer;
}

/** The secrets only full keys have. */
export interface ReadSecrets {
  master: Buffer;
  /** Opens every pack and every sealed object. */
  seal: X25519Keys;
  idRoot: Buffer;
  chunkerRoot: Buffer;
  /** The roots came from another repository (init --from-repo --copy-chunker-params), not from `master`. */
  rootsImported: boolean;
}

/** What decides a writer's blob IDs and cut points besides the chunk sizes (docs/FORMAT.md §3). */
export interface KeyRoots {
  idRoot: Buffer;
  chunkerRoot: Buffer;
}

export interface AccessKeys {
  access: 'full' | 'write-only';
  /** The config's `id`: a key file opens one repository only. */
  repository: string;
  sealPublic: Buffer;
  adminPublic: Buffer;
  /** Seals lock objects, which every key must read to respect an exclusive lock. */
  lockKey: Buffer;
  writer: WriterSecrets;
  /** A write-only key's host: the one host name its snapshots may carry. */
  hostname?: string;
  read?: ReadSecrets;
}

const INFO = {
  seal: 'scrate v3 seal key',
  admin: 'scrate v3 admin key',
  idRoot: 'scrate v3 blob id root',
  chunkerRoot: 'scrate v3 chunker root',
  lock: 'scrate v3 lock key',
  chunkId: 'scrate v3 blob id',
  chunker: 'scrate v3 chunker',
};
const NO_SALT = Buffer.alloc(0);

/** The blob-ID and chunker keys of writer `id`, as every full key derives them. */
export function writerKeys(read: ReadSecrets, id: Buffer): { chunkIdKey: Buffer; chunkerKey: Buffer } {
  return { chunkIdKey: deriveKey(read.idRoot, id, INFO.chunkId), chunkerKey: deriveKey(read.chunkerRoot, id, INFO.chunker) };
}

/**
 * A full key's secrets from its master secret. The roots derive from it too, unless the
 * repository took them from another one (`imported`): then its blob IDs and cut points are that
 * repository's, while everything that reads, signs or locks stays its own.
 */
export function fullKeys(master: Buffer, repository: string, imported?: KeyRoots): AccessKeys {
  const read: ReadSecrets = {
    master,
    seal: x25519Keys(deriveKey(master, NO_SALT, INFO.seal)),
    idRoot: imported?.idRoot ?? deriveKey(master, NO_SALT, INFO.idRoot),
    chunkerRoot: imported?.chunkerRoot ?? deriveKey(master, NO_SALT, INFO.chunkerRoot),
    rootsImported: imported !== undefined,
  };
  const admin = signingKey(deriveKey(master, NO_SALT, INFO.admin));
  return {
    access: 'full',
    repository,
    sealPublic: read.seal.public,
    adminPublic: admin.public,
    lockKey: deriveKey(master, NO_SALT, INFO.lock),
    writer: { id: FULL_WRITER, signing: admin, ...writerKeys(read, FULL_WRITER) },
    read,
  };
}

export function newMasterSecret(): Buffer {
  return randomBytes(KEY_BYTES);
}

/**
 * A new writer, made by a full key: its signing key is random (its key file keeps the seed),
 * its other keys derive from the roots, so full keys can check what it writes. With
 * `shareFullKeys` they are the full writer's (registered as `keysOf`, docs/FORMAT.md §8): it
 * then names and cuts blobs as full keys do, so a host copies its own backups into this
 * repository blob for blob.
 */
export function newWriter(full: AccessKeys, hostname: string, shareFullKeys = false): { keys: AccessKeys; seed: Buffer } {
  const id = randomBytes(WRITER_ID_BYTES);
  const seed = randomBytes(32);
  const keys: AccessKeys = {
    access: 'write-only',
    repository: full.repository,
    hostname,
    sealPublic: full.sealPublic,
    adminPublic: full.adminPublic,
    lockKey: full.lockKey,
    writer: { id, signing: signingKey(seed), ...writerKeys(full.read!, shareFullKeys ? FULL_WRITER : id) },
  };
  return { keys, seed };
}

/** A write-only key's stored form also keeps its signing key's seed. */
interface WriteOnlyJson {
  access: 'write-only';
  repository: string;
  hostname: string;
  writer: string;
  signingSeed: string;
  chunkIdKey: string;
  chunkerKey: string;
  lockKey: string;
  sealPublic: string;
  adminPublic: string;
}

interface FullJson {
  access: 'full';
  repository: string;
  master: string;
  /** Only when imported: derived roots are never stored. */
  idRoot?: string;
  chunkerRoot?: string;
}

/** The secrets of a key file, as JSON; a write-only key needs its signing seed, which AccessKeys holds only as a key object. */
export function encodeAccess(keys: AccessKeys, signingSeed?: Buffer): Buffer {
  let json: FullJson | WriteOnlyJson;
  if (keys.access === 'full') {
    const read = keys.read!;
    json = { access: 'full', repository: keys.repository, master: read.master.toString('base64') };
    if (read.rootsImported) Object.assign(json, { idRoot: read.idRoot.toString('base64'), chunkerRoot: read.chunkerRoot.toString('base64') });
  } else {
    json = {
      access: 'write-only',
      repository: keys.repository,
      hostname: keys.hostname!,
      writer: keys.writer.id.toString('hex'),
      signingSeed: signingSeed!.toString('base64'),
      chunkIdKey: keys.writer.chunkIdKey.toString('base64'),
      chunkerKey: keys.writer.chunkerKey.toString('base64'),
      lockKey: keys.lockKey.toString('base64'),
      sealPublic: keys.sealPublic.toString('base64'),
      adminPublic: keys.adminPublic.toString('base64'),
    };
  }
  return Buffer.from(JSON.stringify(json));
}

/** Parses a key file's secrets; null when they are not of the expected form (whatever opened them). */
export function decodeAccess(bytes: Buffer): AccessKeys | null {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (typeof j !== 'object' || j === null || typeof j['repository'] !== 'string' || !/^[0-9a-f]{64}$/.test(j['repository'])) return null;
  const repository = j['repository'];
  if (j['access'] === 'full') {
    const master = key32(j['master']);
    if (!master) return null;
    if (j['idRoot'] === undefined && j['chunkerRoot'] === undefined) return fullKeys(master, repository);
    const [idRoot, chunkerRoot] = [key32(j['idRoot']), key32(j['chunkerRoot'])];
    return idRoot && chunkerRoot && fullKeys(master, repository, { idRoot, chunkerRoot });
  }
  if (j['access'] !== 'write-only') return null;
  const [seed, chunkIdKey, chunkerKey, lockKey, sealPublic, adminPublic] = ['signingSeed', 'chunkIdKey', 'chunkerKey', 'lockKey', 'sealPublic', 'adminPublic'].map((k) => key32(j[k]));
  const writer = typeof j['writer'] === 'string' && /^[0-9a-f]{32}$/.test(j['writer']) ? Buffer.from(j['writer'], 'hex') : null;
  const hostname = j['hostname'];
  if (!seed || !chunkIdKey || !chunkerKey || !lockKey || !sealPublic || !adminPublic || !writer || writer.equals(FULL_WRITER) || typeof hostname !== 'string') return null;
  return { access: 'write-only', repository, hostname, sealPublic, adminPublic, lockKey, writer: { id: writer, signing: signingKey(seed), chunkIdKey, chunkerKey } };
}

function key32(v: unknown): Buffer | null {
  if (typeof v !== 'string') return null;
  const b = Buffer.from(v, 'base64');
  return b.length === KEY_BYTES && b.toString('base64') === v ? b : null;
}

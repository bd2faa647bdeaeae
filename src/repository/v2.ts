import type { Backend } from '../backend/backend.js';
import { FULL_WRITER } from '../crypto/access.js';
import { deriveWrapKey, kdfProblem, type KdfParams } from '../crypto/kdf.js';
import { recoverKey, x25519Keys } from '../crypto/keybox.js';
import { counterNonce, deriveKey, open, sha256, TAG_BYTES } from '../crypto/primitives.js';
import { ExitCode, IntegrityError, ScrateError } from '../errors.js';
import { ID_BYTES } from './ids.js';
import { decompress } from './compression.js';
import { MAX_OBJECT_BYTES, MAX_OBJECT_PLAIN_BYTES } from './limits.js';
import { BlobType, openPackHeader, PACK_MAGIC, PACK_PREFIX_BYTES, type PackEntry } from './pack.js';
import type { Codec } from './repository.js';
import { BLOB_RECORD_BYTES, decodeBlobRecords, type IndexedPack } from './index-file.js';
import { ObjectKind, type OpenedObject } from './sealed-object.js';
import { Writers } from './writers.js';

/**
 * Format version 2, read-only (the format of scrate before writers were isolated; its bytes are
 * described in git history, docs/FORMAT.md at f09dbac). A version 2 repository opens for
 * every command that only reads: snapshots, ls, dump, restore, check. Nothing is ever written
 * to it, not even a lock. One set of keys for everything: its only writer signed nothing.
 */

interface V2Secrets {
  chunkIdKey: Buffer;
  metadataKey: Buffer;
  dataPrivateKey: Buffer;
}

/** Version 2 let calibration go down to N = 2^10: such key files still open (a planted one still costs little). */
const V2_KDF_FLOOR = { N: 2 ** 10, r: 8 };
const OBJECT_MAGIC = Buffer.from('SCOB');
const OBJECT_HEADER_BYTES = 4 + 1 + 1 + 1 + 32;
const V2_OBJECT_KINDS: Partial<Record<ObjectKind, number>> = { [ObjectKind.snapshot]: 2, [ObjectKind.index]: 3 };
const CONFIG_KIND = 1;
const ENTRY_BYTES = 1 + 1 + 4 + 4 + ID_BYTES;
const KIND_SEALED = 1;
const KIND_DERIVED = 2;

export interface V2Repository {
  keyId: string;
  config: { version: 2; id: string; chunker: { min: number; avg: number; max: number }; compression: number; packSize: number };
  writers: Writers;
  codec: Codec;
}

/** Opens a version 2 repository with `password`, for reading. */
export async function openV2(backend: Backend, password: string, configBytes: Buffer, onSkipped: (id: string, why: string) => void): Promise<V2Repository> {
  const { keyId, secrets } = await unlock(backend, password, onSkipped);
  const config = JSON.parse(openObject(secrets.metadataKey, CONFIG_KIND, configBytes, 'config').toString('utf8')) as V2Repository['config'];
  if (config.version !== 2 || typeof config.id !== 'string' || !/^[0-9a-f]{64}$/.test(config.id)) throw new IntegrityError('config', 'not a version 2 config');
  const writers = new Writers({ id: FULL_WRITER, access: 'full', chunkIdKey: secrets.chunkIdKey });
  const data = x25519Keys(secrets.dataPrivateKey);
  const codec: Codec = {
    version: 2,
    openObject: (kind, stored, what): OpenedObject => {
      const v2Kind = V2_OBJECT_KINDS[kind];
      if (v2Kind === undefined) throw new IntegrityError(what, 'no such object in format version 2');
      const payload = openObject(secrets.metadataKey, v2Kind, stored, what);
      return { writer: FULL_WRITER, payload, signedBy: () => true };
    },
    packKey: (envelope, what) => {
      if (envelope[0] === KIND_DERIVED && envelope.length === 33) return deriveKey(secrets.metadataKey, envelope.subarray(1), 'scrate v1 tree pack');
      if (envelope[0] !== KIND_SEALED || envelope.length !== 81) throw new IntegrityError(what, 'unknown key envelope');
      const wrapKey = recoverKey(envelope.subarray(1, 33), data, 'scrate v1 pack key');
      const key = wrapKey && open(wrapKey, Buffer.alloc(12), envelope.subarray(33));
      if (!key) throw new IntegrityError(what, 'pack key failed authentication');
      return key;
    },
    readEnvelope,
    decodeIndex,
    packSize: (blobsEnd, count) => blobsEnd + count * ENTRY_BYTES + TAG_BYTES + 4,
    readPackHeader: (pack, key, what) => {
      const firstBlob = PACK_PREFIX_BYTES + readEnvelope(pack, what).length;
      const { plain, headerStart } = openPackHeader(pack, key, firstBlob, what);
      if (plain.length % ENTRY_BYTES !== 0) throw new IntegrityError(what, 'malformed pack header');
      const entries: PackEntry[] = [];
      let offset = firstBlob;
      for (let at = 0; at < plain.length; at += ENTRY_BYTES) {
        const length = plain.readUInt32LE(at + 6);
        entries.push({ type: plain[at] as BlobType, compressed: (plain[at + 1]! & 1) !== 0, rawLength: plain.readUInt32LE(at + 2), length, id: Buffer.from(plain.subarray(at + 10, at + 10 + ID_BYTES)), offset });
        offset += length;
      }
      if (offset !== headerStart) throw new IntegrityError(what, 'pack header does not match the pack size');
      return { writer: FULL_WRITER, type: entries[0]?.type ?? BlobType.data, entries };
    },
  };
  return { keyId, config, writers, codec };
}

/** Version 2's index body: packId | type | envelope length u8 | envelope | count | blob records. */
function decodeIndex(buf: Buffer, what: string): IndexedPack[] {
  const bad = (detail: string) => new IntegrityError(what, detail);
  const packs: IndexedPack[] = [];
  let at = 4;
  const need = (n: number) => {
    if (at + n > buf.length) throw bad('truncated');
  };
  need(0);
  for (let i = 0, count = buf.readUInt32LE(0); i < count; i++) {
    need(ID_BYTES + 2);
    const id = Buffer.from(buf.subarray(at, (at += ID_BYTES)));
    const type = buf[at++]!;
    if (type !== BlobType.data && type !== BlobType.tree) throw bad(`unknown blob type ${type}`);
    const envLength = buf[at++]!;
    need(envLength + 4);
    const envelope = Buffer.from(buf.subarray(at, (at += envLength)));
    const n = buf.readUInt32LE(at);
    at += 4;
    need(n * BLOB_RECORD_BYTES);
    packs.push({ id, type: type as BlobType, writer: FULL_WRITER, envelope, markedAt: 0, entries: decodeBlobRecords(buf, at, n, type as BlobType, bad) });
    at += n * BLOB_RECORD_BYTES;
  }
  if (at !== buf.length) throw bad('trailing bytes');
  return packs;
}

function readEnvelope(pack: Buffer, what: string): Buffer {
  if (pack.length < 6 || !pack.subarray(0, 4).equals(PACK_MAGIC) || pack[4] !== 1) throw new IntegrityError(what, 'not a version 2 pack');
  const length = pack[5] === KIND_SEALED ? 81 : pack[5] === KIND_DERIVED ? 33 : 0;
  if (length === 0 || pack.length < PACK_PREFIX_BYTES + length) throw new IntegrityError(what, 'unknown or truncated key envelope');
  return Buffer.from(pack.subarray(PACK_PREFIX_BYTES, PACK_PREFIX_BYTES + length));
}

/** "SCOB" | version 1 | kind | flags | salt (32) | AES-GCM under HKDF(metadataKey, salt), the header authenticated. */
function openObject(metadataKey: Buffer, kind: number, stored: Buffer, what: string): Buffer {
  if (stored.length < OBJECT_HEADER_BYTES + TAG_BYTES || !stored.subarray(0, 4).equals(OBJECT_MAGIC) || stored[4] !== 1) throw new IntegrityError(what, 'not a version 2 object');
  if (stored[5] !== kind) throw new IntegrityError(what, 'object of the wrong kind');
  const header = stored.subarray(0, OBJECT_HEADER_BYTES);
  const key = deriveKey(metadataKey, header.subarray(7), 'scrate v1 object');
  const plain = open(key, counterNonce(0), stored.subarray(OBJECT_HEADER_BYTES), header);
  if (!plain) throw new IntegrityError(what, 'authentication failed (damaged, or not from this repository)');
  try {
    return stored[6]! & 1 ? decompress(plain, MAX_OBJECT_PLAIN_BYTES) : plain;
  } catch {
    throw new IntegrityError(what, 'does not decompress');
  }
}

/** Tries every well-formed version 2 key file (with bounded parameters) until the password opens one. */
async function unlock(backend: Backend, password: string, onSkipped: (id: string, why: string) => void): Promise<{ keyId: string; secrets: V2Secrets }> {
  let tried = 0;
  for await (const { name, size } of backend.list('keys')) {
    if (size > MAX_OBJECT_BYTES.keys) {
      onSkipped(name, 'too large for a key file');
      continue;
    }
    const bytes = await backend.load('keys', name, { limit: MAX_OBJECT_BYTES.keys });
    const file = parseKeyFile(bytes);
    if (sha256(bytes).toString('hex') !== name || typeof file === 'string') {
      onSkipped(name, typeof file === 'string' ? file : 'content does not match its name');
      continue;
    }
    tried++;
    const plain = open(await deriveWrapKey(password, file.kdf), Buffer.from(file.nonce, 'base64'), Buffer.from(file.data, 'base64'));
    const secrets = plain && parseSecrets(plain);
    if (secrets) return { keyId: name, secrets };
  }
  if (tried === 0) throw new ScrateError(`repository ${backend.location} has no usable keys`);
  throw new ScrateError('wrong password, or no key in this repository matches it', ExitCode.wrongPassword);
}

/** A version 2 key file's fields that matter, checked; or why it is skipped. */
function parseKeyFile(bytes: Buffer): { kdf: KdfParams; nonce: string; data: string } | string {
  try {
    const j = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
    if (j['version'] !== 1) return 'not a version 2 key file';
    const why = kdfProblem(j['kdf'], V2_KDF_FLOOR);
    if (why) return why;
    if (typeof j['nonce'] !== 'string' || Buffer.from(j['nonce'], 'base64').length !== 12 || typeof j['data'] !== 'string' || j['data'].length > 8192) return 'malformed';
    return { kdf: j['kdf'] as KdfParams, nonce: j['nonce'], data: j['data'] };
  } catch {
    return 'not valid JSON';
  }
}

function parseSecrets(plain: Buffer): V2Secrets | null {
  try {
    const j = JSON.parse(plain.toString('utf8')) as Record<string, string>;
    const keys = ['chunkIdKey', 'metadataKey', 'dataPrivateKey'].map((k) => Buffer.from(String(j[k] ?? ''), 'base64'));
    if (keys.some((k) => k.length !== 32)) return null;
    const [chunkIdKey, metadataKey, dataPrivateKey] = keys as [Buffer, Buffer, Buffer];
    return { chunkIdKey, metadataKey, dataPrivateKey };
  } catch {
    return null;
  }
}

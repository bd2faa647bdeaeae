import { randomBytes, type KeyObject } from 'node:crypto';
import { decodeAccess, encodeAccess, type AccessKeys } from '../crypto/access.js';
import { calibrateKdf, deriveWrapKey, kdfProblem, type KdfParams } from '../crypto/kdf.js';
import { openBox, sealBox, type X25519Keys } from '../crypto/keybox.js';
import { NONCE_BYTES, open, seal } from '../crypto/primitives.js';
import { signMessage, SIGNATURE_BYTES, verifySignature, type SigningKey } from '../crypto/signing.js';
import { MAX_OBJECT_BYTES } from './limits.js';
import { padJson } from './padding.js';

/**
 * A key file (`keys/<sha256>`, docs/FORMAT.md §3): a password's way into a repository. Whoever
 * can write to the bucket can plant one, so every field is checked before anything is derived
 * (no parameter may stall a command), and only key files signed by the repository's admin key
 * are tried at all.
 */
export interface KeyFile {
  version: 3;
  kdf: KdfParams;
  nonce: string;
  /** The key's secrets (crypto/access.ts), AES-GCM under the password's wrap key. */
  data: string;
  /** KeyInfo, sealed to the repository's public key: only full keys read whose key it is. */
  info: string;
  /** Ed25519 by the admin key over every other field. */
  signature: string;
}

/** What `key list` shows of a key; hidden from write-only keys and from the bucket. */
export interface KeyInfo {
  created: string;
  hostname: string;
  username: string;
  access: 'full' | 'write-only';
  /** The writer a write-only key writes as (hex). */
  writer: string;
}

const MAX_FIELD_BYTES = 4096;
const SIGNED_AS = 'scrate v3 key file\0';
const INFO_AS = 'scrate v3 key info';

const FIELDS = ['version', 'kdf', 'nonce', 'data', 'info', 'signature'];
const KDF_FIELDS = ['name', 'N', 'r', 'p', 'salt'];

/** Why a key file is not one scrate could have written, or null. */
function problem(j: Record<string, unknown>): string | null {
  if (j['version'] !== 3) return `unsupported key file version ${String(j['version'])}`;
  const extra = [...Object.keys(j).filter((k) => !FIELDS.includes(k)), ...Object.keys((j['kdf'] ?? {}) as object).filter((k) => !KDF_FIELDS.includes(k))];
  if (extra.length) return `unexpected field ${extra[0]}`;
  const kdf = kdfProblem(j['kdf']);
  if (kdf) return kdf;
  if (base64Length(j['nonce']) !== NONCE_BYTES) return 'bad nonce';
  for (const field of ['data', 'info']) {
    const n = base64Length(j[field]);
    if (n < 16 || n > MAX_FIELD_BYTES) return `bad ${field}`;
  }
  if (base64Length(j['signature']) !== SIGNATURE_BYTES) return 'bad signature';
  return null;
}

function base64Length(v: unknown): number {
  if (typeof v !== 'string' || v.length > 2 * MAX_FIELD_BYTES) return -1;
  const b = Buffer.from(v, 'base64');
  return b.toString('base64') === v ? b.length : -1;
}

/** The key file in these bytes, checked field by field; throws a one-line reason. */
export function parseKeyFile(bytes: Buffer): KeyFile {
  if (bytes.length > MAX_OBJECT_BYTES.keys) throw new Error('too large');
  let j: unknown;
  try {
    j = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new Error('not valid JSON');
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new Error('not a JSON object');
  const why = problem(j as Record<string, unknown>);
  if (why) throw new Error(why);
  const { version, kdf, nonce, data, info, signature } = j as KeyFile;
  return { version, kdf: { name: kdf.name, N: kdf.N, r: kdf.r, p: kdf.p, salt: kdf.salt }, nonce, data, info, signature };
}

function signedPart(f: KeyFile): Buffer {
  const { version, kdf, nonce, data, info } = f;
  return Buffer.from(SIGNED_AS + JSON.stringify({ version, kdf: { name: kdf.name, N: kdf.N, r: kdf.r, p: kdf.p, salt: kdf.salt }, nonce, data, info }));
}

/** Whether the repository's admin key signed this key file. */
export function signedByAdmin(f: KeyFile, admin: KeyObject): boolean {
  return verifySignature(admin, signedPart(f), Buffer.from(f.signature, 'base64'));
}

/**
 * A new key file for `keys` under `password`, signed by the admin key. A write-only key's
 * signing seed is stored with its secrets.
 */
export async function createKeyFile(keys: AccessKeys, password: string, kdfMs: number, info: Omit<KeyInfo, 'access' | 'writer'>, admin: SigningKey, signingSeed?: Buffer): Promise<KeyFile> {
  const kdf = await calibrateKdf(kdfMs);
  const wrapKey = await deriveWrapKey(password, kdf);
  const nonce = randomBytes(NONCE_BYTES);
  const full: KeyInfo = { ...info, access: keys.access, writer: keys.writer.id.toString('hex') };
  const file: KeyFile = {
    version: 3,
    kdf,
    nonce: nonce.toString('base64'),
    // Padded: the length of what a key file holds tells neither its access nor its host.
    data: seal(wrapKey, nonce, padJson(encodeAccess(keys, signingSeed).toString(), 1024)).toString('base64'),
    info: sealBox(keys.sealPublic, INFO_AS, padJson(JSON.stringify(full), 512)).toString('base64'),
    signature: '',
  };
  file.signature = signMessage(admin, signedPart(file)).toString('base64');
  return file;
}

export function encodeKeyFile(f: KeyFile): Buffer {
  return Buffer.from(JSON.stringify(f, null, 2) + '\n');
}

/** The keys, or null when the password does not open this key file (or what it opens is not a key). */
export async function openKeyFile(f: KeyFile, password: string): Promise<AccessKeys | null> {
  const wrapKey = await deriveWrapKey(password, f.kdf);
  const plain = open(wrapKey, Buffer.from(f.nonce, 'base64'), Buffer.from(f.data, 'base64'));
  return plain && decodeAccess(plain);
}

/** Whose key this is, for full keys; null when the info does not open or is malformed. */
export function readKeyInfo(f: KeyFile, seal: X25519Keys): KeyInfo | null {
  const plain = openBox(Buffer.from(f.info, 'base64'), seal, INFO_AS);
  if (!plain) return null;
  try {
    const j = JSON.parse(plain.toString('utf8')) as KeyInfo;
    const strings = [j.created, j.hostname, j.username, j.writer].every((s) => typeof s === 'string');
    return strings && (j.access === 'full' || j.access === 'write-only') ? j : null;
  } catch {
    return null;
  }
}

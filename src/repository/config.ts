import { IntegrityError, ScrateError } from '../errors.js';
import { signMessage, verifySignature, verifyingKey, type SigningKey } from '../crypto/signing.js';

/** docs/FORMAT.md's version: 3 isolates writers (version 2 is read-only, src/repository/v2.ts). */
export const FORMAT_VERSION = 3;

/**
 * Repository-wide settings, fixed at init: the `config` object, JSON signed by the admin key.
 * Not secret (write-only hosts need it); authenticated, created once and never replaced.
 */
export interface RepoConfig {
  version: typeof FORMAT_VERSION;
  /** Random; names the repository in caches and messages, and binds key files to it. */
  id: string;
  chunker: { min: number; avg: number; max: number };
  /** Default zstd level for data blobs; 0 stores them uncompressed. */
  compression: number;
  /** Packs are closed once they reach this many bytes. */
  packSize: number;
  /** X25519: packs and objects are encrypted to it (base64). */
  sealPublic: string;
  /** Ed25519: signs config, key files and writer records, and what full keys store (base64). */
  adminPublic: string;
  /**
   * The blob-ID and chunker roots were taken from another repository (init --from-repo
   * --copy-chunker-params): every full key file carries them. Absent otherwise.
   */
  roots?: 'imported';
}

export const DEFAULT_CHUNKER = { min: 512 * 1024, avg: 1024 * 1024, max: 8 * 1024 * 1024 };
export const DEFAULT_COMPRESSION = 3;
export const DEFAULT_PACK_SIZE = 16 * 1024 * 1024;
/** Tests use packs of a few KiB, to make many of them. */
const PACK_SIZE_BOUNDS = [4 * 1024, 256 * 1024 * 1024] as const;

const SIGNED_AS = 'scrate v3 config\0';

export function checkChunkerParams(p: { min: number; avg: number; max: number }): void {
  const ok = Number.isInteger(p.min) && Number.isInteger(p.avg) && Number.isInteger(p.max) && p.min >= 64 && p.min < p.avg && p.avg < p.max && p.max <= 64 * 1024 * 1024;
  if (!ok) throw new ScrateError(`invalid chunk sizes ${p.min}/${p.avg}/${p.max}`, 1, 'need 64 ≤ min < avg < max ≤ 64 MiB');
}

export function checkPackSize(size: number): void {
  if (!Number.isInteger(size) || size < PACK_SIZE_BOUNDS[0] || size > PACK_SIZE_BOUNDS[1]) throw new ScrateError(`invalid pack size ${size}`, 1, 'need 4 KiB to 256 MiB');
}

export function checkCompressionLevel(level: number): void {
  if (!Number.isInteger(level) || level < 0 || level > 19) throw new ScrateError(`invalid compression level ${level}`, 1, 'use 0 (off) to 19');
}

/** The config's fields in a fixed order: what is signed, and (with the signature) what is stored. */
function canonical(c: RepoConfig): string {
  const { version, id, chunker, compression, packSize, sealPublic, adminPublic, roots } = c;
  // Without the marker, the bytes are those of every config written before it existed.
  return JSON.stringify({ version, id, chunker: { min: chunker.min, avg: chunker.avg, max: chunker.max }, compression, packSize, sealPublic, adminPublic, ...(roots && { roots }) });
}

export function encodeConfig(c: RepoConfig, admin: SigningKey): Buffer {
  const body = canonical(c);
  const signature = signMessage(admin, Buffer.from(SIGNED_AS + body)).toString('base64');
  return Buffer.from(`${body.slice(0, -1)},"signature":"${signature}"}\n`);
}

/** Whether stored config bytes are of this version (version 2 configs are sealed binary objects). */
export function isJsonConfig(bytes: Buffer): boolean {
  return bytes[0] === 0x7b;
}

/**
 * The admin key the stored config claims, before anything can verify it: it only picks which
 * key files to try (see unlockKeys).
 */
export function readConfigAdmin(bytes: Buffer): Buffer {
  try {
    const j = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
    const admin = typeof j['adminPublic'] === 'string' ? Buffer.from(j['adminPublic'], 'base64') : Buffer.alloc(0);
    if (admin.length === 32) return admin;
  } catch {
    // Reported below.
  }
  throw new IntegrityError('config', 'malformed (no admin key)');
}

/**
 * The stored config, every field checked, its signature verified with the admin key of the
 * key file that opened the repository: a config written by anyone else is refused.
 */
export function decodeConfig(bytes: Buffer, adminPublic: Buffer): RepoConfig {
  const bad = (detail: string) => new IntegrityError('config', detail);
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw bad('not valid JSON');
  }
  if (typeof j !== 'object' || j === null) throw bad('not an object');
  if (typeof j['version'] === 'number' && j['version'] > FORMAT_VERSION) {
    throw new ScrateError(`repository format version ${j['version']} is not supported by this scrate (it reads versions 2 and ${FORMAT_VERSION})`, 1, 'a newer scrate made it');
  }
  if (j['version'] !== FORMAT_VERSION) throw bad(`unsupported version ${String(j['version'])}`);
  const chunker = j['chunker'] as Record<string, unknown> | null;
  if (typeof chunker !== 'object' || chunker === null) throw bad('no chunker settings');
  const c: RepoConfig = {
    version: FORMAT_VERSION,
    id: j['id'] as string,
    chunker: { min: chunker['min'] as number, avg: chunker['avg'] as number, max: chunker['max'] as number },
    compression: j['compression'] as number,
    packSize: j['packSize'] as number,
    sealPublic: j['sealPublic'] as string,
    adminPublic: j['adminPublic'] as string,
  };
  if (j['roots'] !== undefined) {
    if (j['roots'] !== 'imported') throw bad('bad roots');
    c.roots = 'imported';
  }
  if (typeof c.id !== 'string' || !/^[0-9a-f]{64}$/.test(c.id)) throw bad('bad id');
  try {
    checkChunkerParams(c.chunker);
    checkCompressionLevel(c.compression);
    checkPackSize(c.packSize);
  } catch (err) {
    throw bad((err as Error).message);
  }
  for (const k of ['sealPublic', 'adminPublic'] as const) {
    if (typeof c[k] !== 'string' || Buffer.from(c[k], 'base64').length !== 32) throw bad(`bad ${k}`);
  }
  const signature = typeof j['signature'] === 'string' ? Buffer.from(j['signature'], 'base64') : Buffer.alloc(0);
  const admin = Buffer.from(c.adminPublic, 'base64');
  if (!admin.equals(adminPublic) || !verifySignature(verifyingKey(admin), Buffer.from(SIGNED_AS + canonical(c)), signature)) {
    throw new IntegrityError('config', 'not signed by this repository (replaced or altered)');
  }
  return c;
}

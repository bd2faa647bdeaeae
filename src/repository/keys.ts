import os from 'node:os';
import type { Backend } from '../backend/backend.js';
import type { AccessKeys } from '../crypto/access.js';
import { sha256 } from '../crypto/primitives.js';
import { verifyingKey, type SigningKey } from '../crypto/signing.js';
import { ExitCode, ScrateError } from '../errors.js';
import { createKeyFile, encodeKeyFile, openKeyFile, parseKeyFile, signedByAdmin, type KeyFile } from './key-file.js';
import { MAX_OBJECT_BYTES } from './limits.js';

/** How long one password check should take, at least (calibrated at key creation). */
export const DEFAULT_KDF_MS = 500;

export interface KeyListing {
  id: string;
  file: KeyFile;
}

/**
 * Every well-formed key file. One that is damaged, altered or planted with out-of-bounds
 * parameters is skipped (reported through `onSkipped`) so that it cannot lock out the others.
 */
export async function listKeys(backend: Backend, onSkipped?: (id: string, why: string) => void): Promise<KeyListing[]> {
  const out: KeyListing[] = [];
  for await (const { name, size } of backend.list('keys')) {
    if (size > MAX_OBJECT_BYTES.keys) {
      onSkipped?.(name, `${size} bytes is too large for a key file`);
      continue;
    }
    try {
      const bytes = await backend.load('keys', name, { limit: MAX_OBJECT_BYTES.keys });
      if (sha256(bytes).toString('hex') !== name) throw new Error('content does not match its name');
      out.push({ id: name, file: parseKeyFile(bytes) });
    } catch (err) {
      if (!(err instanceof Error) || err instanceof ScrateError) throw err;
      onSkipped?.(name, err.message);
    }
  }
  return out;
}

/** Writes a key file for `keys` under `password`, signed by `admin`; returns its ID. */
export async function addKey(backend: Backend, keys: AccessKeys, password: string, kdfMs: number, admin: SigningKey, opts: { hostname?: string; signingSeed?: Buffer } = {}): Promise<string> {
  const info = { created: new Date().toISOString(), hostname: opts.hostname ?? os.hostname(), username: os.userInfo().username };
  const bytes = encodeKeyFile(await createKeyFile(keys, password, kdfMs, info, admin, opts.signingSeed));
  const id = sha256(bytes).toString('hex');
  await backend.save('keys', id, bytes, { sha256: id });
  return id;
}

/**
 * Tries the key files the config's admin key signed (`hint` first): a planted one is never tried, so none
 * can cost a key derivation. Which admin key is real is settled after: the config must be
 * signed by the admin key inside the key file the password opened (Repository.open).
 */
export async function unlockKeys(backend: Backend, password: string, configAdmin: Buffer, onSkipped?: (id: string, why: string) => void, hint?: string): Promise<{ keyId: string; keys: AccessKeys }> {
  const listing = await listKeys(backend, onSkipped);
  if (listing.length === 0) throw new ScrateError(`repository ${backend.location} has no usable keys`, ExitCode.fatal);
  const admin = verifyingKey(configAdmin);
  const signed = listing.filter(({ file }) => signedByAdmin(file, admin));
  if (signed.length === 0) throw new ScrateError(`no key file of ${backend.location} is signed by its config's admin key`, ExitCode.fatal, 'the config or the key files were replaced or altered');
  for (const { id } of listing.filter((k) => !signed.includes(k))) onSkipped?.(id, 'not signed by the admin key of the config');
  // The key that opened the repository last on this machine first: a host's key among many.
  signed.sort((a, b) => Number(b.id === hint) - Number(a.id === hint));
  for (const { id, file } of signed) {
    const keys = await openKeyFile(file, password);
    if (keys) return { keyId: id, keys };
  }
  throw new ScrateError('wrong password, or no key in this repository matches it', ExitCode.wrongPassword);
}

import os from 'node:os';
import type { Backend } from '../backend/backend.js';
import { createKeyFile, openKeyFile, type KeyFile, type MasterKeys } from '../crypto/masterkeys.js';
import { sha256 } from '../crypto/primitives.js';
import { ExitCode, IntegrityError, ScrateError } from '../errors.js';

/** How long one password check should take; tests lower it. */
export const DEFAULT_KDF_MS = 500;

export interface KeyListing {
  id: string;
  file: KeyFile;
}

/** Every readable key file, oldest first; a damaged one is skipped so that it cannot lock out the others. */
export async function listKeys(backend: Backend): Promise<KeyListing[]> {
  const out: KeyListing[] = [];
  for await (const { name } of backend.list('keys')) {
    try {
      out.push({ id: name, file: await loadKeyFile(backend, name) });
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err;
    }
  }
  return out.sort((a, b) => a.file.created.localeCompare(b.file.created));
}

async function loadKeyFile(backend: Backend, id: string): Promise<KeyFile> {
  const bytes = await backend.load('keys', id);
  if (sha256(bytes).toString('hex') !== id) throw new IntegrityError(`key ${id.slice(0, 8)}`, 'content does not match its name');
  try {
    return JSON.parse(bytes.toString('utf8')) as KeyFile;
  } catch {
    throw new IntegrityError(`key ${id.slice(0, 8)}`, 'not valid JSON');
  }
}

/** Writes a new key file protecting `keys` with `password`; returns its ID. */
export async function addKey(backend: Backend, keys: MasterKeys, password: string, kdfMs: number): Promise<string> {
  const file = await createKeyFile(keys, password, kdfMs, { hostname: os.hostname(), username: os.userInfo().username });
  const bytes = Buffer.from(JSON.stringify(file, null, 2) + '\n');
  const id = sha256(bytes).toString('hex');
  await backend.save('keys', id, bytes, { sha256: id });
  return id;
}

/** Tries every key file; the first the password opens wins. */
export async function unlockKeys(backend: Backend, password: string): Promise<{ keyId: string; keys: MasterKeys }> {
  const listing = await listKeys(backend);
  if (listing.length === 0) throw new ScrateError(`repository ${backend.location} has no keys`, ExitCode.fatal);
  for (const { id, file } of listing) {
    const keys = await openKeyFile(file, password);
    if (keys) return { keyId: id, keys };
  }
  throw new ScrateError('wrong password, or no key in this repository matches it', ExitCode.wrongPassword);
}

export async function removeKey(backend: Backend, id: string, current: string): Promise<void> {
  const listing = await listKeys(backend);
  if (!listing.some((k) => k.id === id)) throw new ScrateError(`no key ${id}`);
  if (id === current) throw new ScrateError('refusing to remove the key in use', ExitCode.fatal, 'open the repository with another key to remove this one');
  if (listing.length <= 1) throw new ScrateError('refusing to remove the last key');
  await backend.remove('keys', id);
}

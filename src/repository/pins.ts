import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { sha256 } from '../crypto/primitives.js';

/**
 * What this machine remembers of the repository at a location: its ID and admin key (a config
 * replaced since, with key files of its own, is refused at once rather than having its key
 * files tried) and the key file that opened it last (tried first: a host's key among many).
 * Kept beside the cache; losing it loses nothing but those two conveniences.
 */
export interface Pin {
  id: string;
  admin: string;
  key: string;
}

function pinFile(root: string, location: string): string {
  return path.join(root, 'pins', sha256(Buffer.from(location)).toString('hex'));
}

export async function readPin(root: string, location: string): Promise<Pin | null> {
  try {
    const j = JSON.parse(await fs.readFile(pinFile(root, location), 'utf8')) as Pin;
    return typeof j.id === 'string' && typeof j.admin === 'string' && typeof j.key === 'string' ? j : null;
  } catch {
    return null;
  }
}

/** Best effort: a read-only or missing cache only costs the conveniences. */
export async function writePin(root: string, location: string, pin: Pin): Promise<void> {
  const file = pinFile(root, location);
  const temp = `${file}.tmp-${randomBytes(6).toString('hex')}`;
  try {
    await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    await fs.writeFile(temp, JSON.stringify(pin), { mode: 0o600 });
    await fs.rename(temp, file);
  } catch {
    await fs.rm(temp, { force: true }).catch(() => undefined);
  }
}

/** Where a pin lives, for the message that tells a user how to forget it. */
export function pinPath(root: string, location: string): string {
  return pinFile(root, location);
}

import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ScrateError } from '../../errors.js';

/** What the cache remembers across processes; replaced atomically, at open and at checkpoints. */
export interface CacheState {
  volume: string;
  /** The session of the process that wrote this state (the newest). */
  session: string;
  /** Every session that wrote into this cache, oldest first (the newest MAX_SESSIONS). */
  sessions: string[];
  /** The seq covered by the repository's latest volume record, as the caller said at the last checkpoint. */
  baseSeq: number;
  /** Segments numbered below this were freed; replay ignores (and deletes) them. */
  logStart: number;
  /** Seqs handed out so far stay below this, even if their records were lost. */
  nextSeq: number;
}

export const MAX_SESSIONS = 256;
const STATE_FILE = 'state';
const TEMP_PREFIX = '.tmp-';

/** fsync of a file or a directory (a directory's sync makes the names in it durable). */
export async function syncPath(file: string): Promise<void> {
  const fh = await fs.open(file, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function isCount(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}

function isHex(v: unknown, chars: number): v is string {
  return typeof v === 'string' && v.length === chars && /^[0-9a-f]+$/.test(v);
}

export async function readState(dir: string): Promise<CacheState | null> {
  const file = path.join(dir, STATE_FILE);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  let j: Partial<CacheState>;
  try {
    j = JSON.parse(text) as Partial<CacheState>;
  } catch {
    j = {};
  }
  if (
    !isHex(j.volume, 32) || !isHex(j.session, 16) || !Array.isArray(j.sessions) || !j.sessions.every((s) => isHex(s, 16)) ||
    !isCount(j.baseSeq) || !isCount(j.logStart) || !isCount(j.nextSeq)
  ) {
    throw new ScrateError(`volume cache state ${file} is damaged`);
  }
  return { volume: j.volume, session: j.session, sessions: j.sessions, baseSeq: j.baseSeq, logStart: j.logStart, nextSeq: j.nextSeq };
}

/** Write a temporary file, sync it, rename it over the state, sync the directory: the old state or the new, never a mix. */
export async function writeState(dir: string, state: CacheState): Promise<void> {
  const temp = path.join(dir, TEMP_PREFIX + randomBytes(8).toString('hex'));
  try {
    await fs.writeFile(temp, JSON.stringify(state) + '\n', { mode: 0o600, flag: 'wx' });
    await syncPath(temp);
    await fs.rename(temp, path.join(dir, STATE_FILE));
  } catch (err) {
    await fs.rm(temp, { force: true });
    throw err;
  }
  await syncPath(dir);
}

/** Temporary files of a state write that a crash interrupted. */
export async function removeStaleTemps(dir: string): Promise<void> {
  for (const name of await fs.readdir(dir)) if (name.startsWith(TEMP_PREFIX)) await fs.rm(path.join(dir, name), { force: true });
}

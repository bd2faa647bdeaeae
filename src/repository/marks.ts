import { randomBytes } from 'node:crypto';
import { counterNonce, deriveKey, open, seal, sha256 } from '../crypto/primitives.js';
import { signMessage, verifySignature, verifyingKey } from '../crypto/signing.js';
import { MAX_OBJECT_BYTES } from './limits.js';
import type { Repository } from './repository.js';

/**
 * The packs a prune has marked for deletion, in `marks/` objects every key reads (docs/FORMAT.md
 * §9.1). The index says it for full keys; a write-only key cannot read the index, and must not
 * deduplicate against such a pack: it could be deleted before its snapshot refers to it. Signed
 * by the admin key, so a write-only host cannot make others distrust packs.
 *
 * Each pack's mark also has the time since which every backup that starts sees it (0: not yet
 * known): a later prune deletes the pack only when no backup that started before then runs.
 */
const MAGIC = Buffer.from('SCM3');
const HEADER_BYTES = 4 + 32;
const NONCE = counterNonce(0);
const SIGNED_AS = 'scrate v3 marks\0';

interface Marks {
  time: string;
  packs: string[];
  /** Per pack, ms since the epoch: since when every backup that starts sees its mark; 0 unknown. */
  seen: number[];
  signature?: string;
}

function signedPart(m: Marks): Buffer {
  return Buffer.from(SIGNED_AS + JSON.stringify({ time: m.time, packs: m.packs, seen: m.seen }));
}

function key(repo: Repository, salt: Buffer): Buffer {
  return deriveKey(repo.keys.lockKey, salt, 'scrate v3 marks');
}

/** Writes the packs marked for deletion, each with the time its mark is seen from (none: nothing written); returns the object's name. */
export async function saveMarks(repo: Repository, seen: ReadonlyMap<string, number>): Promise<string | undefined> {
  if (seen.size === 0) return undefined;
  const marks: Marks = { time: new Date().toISOString(), packs: [...seen.keys()], seen: [...seen.values()] };
  marks.signature = signMessage(repo.keys.writer.signing, signedPart(marks)).toString('base64');
  const salt = randomBytes(32);
  const header = Buffer.concat([MAGIC, salt]);
  const bytes = Buffer.concat([header, seal(key(repo, salt), NONCE, Buffer.from(JSON.stringify(marks)), header)]);
  const name = sha256(bytes).toString('hex');
  await repo.backend.save('marks', name, bytes, { sha256: name });
  return name;
}

/**
 * Every pack some marks object says is marked for deletion, with the latest time its mark is
 * seen from (objects written before a crash may repeat a pack); objects that do not decode or
 * verify are ignored.
 */
export async function loadMarks(repo: Repository): Promise<{ seen: Map<string, number>; objects: string[] }> {
  const seen = new Map<string, number>();
  const objects = await repo.listNames('marks');
  const admin = verifyingKey(repo.keys.adminPublic);
  for (const name of objects) {
    let bytes: Buffer;
    try {
      bytes = await repo.backend.load('marks', name, { limit: MAX_OBJECT_BYTES.marks });
    } catch {
      continue; // gone since the listing, or too large to be one
    }
    if (bytes.length < HEADER_BYTES || !bytes.subarray(0, 4).equals(MAGIC)) continue;
    const plain = open(key(repo, bytes.subarray(4, HEADER_BYTES)), NONCE, bytes.subarray(HEADER_BYTES), bytes.subarray(0, HEADER_BYTES));
    try {
      const m = plain && (JSON.parse(plain.toString('utf8')) as Marks);
      if (!m || typeof m.time !== 'string' || !Array.isArray(m.packs) || !m.packs.every((p) => typeof p === 'string')) continue;
      if (!Array.isArray(m.seen) || m.seen.length !== m.packs.length || !m.seen.every((t) => Number.isSafeInteger(t) && t >= 0)) continue;
      if (!verifySignature(admin, signedPart(m), Buffer.from(String(m.signature), 'base64'))) continue;
      m.packs.forEach((p, i) => seen.set(p, Math.max(seen.get(p) ?? 0, m.seen[i]!)));
    } catch {
      // Not a marks object of this repository.
    }
  }
  return { seen, objects };
}

import { NotFoundError } from '../backend/backend.js';
import { randomBytes } from 'node:crypto';
import { ExitCode, IntegrityError, RefusedError, ScrateError } from '../errors.js';
import { hostTag } from '../repository/lock.js';
import type { Repository } from '../repository/repository.js';
import { ObjectKind } from '../repository/sealed-object.js';
import type { Writer } from '../repository/writers.js';
import { isIsoTime, jsonObject, type SnapshotEntry } from '../snapshot/snapshot.js';

/**
 * A volume's head (docs/FORMAT.md §14): what it is (name, size, block size) and where its
 * newest state is (`tree`, a root tree like a commit's). Write-once like every object: a writer
 * saves seq + 1, then deletes the older records; the live one is the highest seq.
 */
export interface VolumeRecord {
  /** 32 hex: the volume's identity, fixed at create. */
  volume: string;
  name: string;
  size: number;
  blockSize: number;
  created: string;
  seq: number;
  /** 16 hex: the process that wrote the record (a serve's session, whose cache it matches). */
  session: string;
  /** The writing host's lock tag (lock.ts hostTag). */
  host: string;
  time: string;
  /** Hex ID of the head's root tree: one file node named after the volume, its map as content. */
  tree: string;
  /** The last commit (a snapshot ID), or null before the first. */
  commit: string | null;
  /** Writes were left only in the writing host's cache when it stopped. */
  pending: boolean;
}

/** A record as stored: its object's name and the writer that signed it (always the full writer). */
export interface VolumeEntry {
  name: string;
  record: VolumeRecord;
  writer: Writer;
}

/** Said when a write-only key is asked for a volume. */
export const VOLUMES_NEED_FULL_KEY = 'volumes need a full key: a write-only key can neither read nor write them';

const VOLUME_ID = /^[0-9a-f]{32}$/;
const SESSION = /^[0-9a-f]{16}$/;
const HEX_ID = /^[0-9a-f]{64}$/;
const MIN_BLOCK = 4096;
const MAX_BLOCK = 1024 * 1024;
/** The deepest map (FORMAT §13): 1024^6 blocks. */
const MAX_MAP_BLOCKS = 1024 ** 6;
/** A size is counted in 512-byte sectors (the image node's block size). */
export const SECTOR = 512;

function requireFull(repo: Repository): void {
  if (repo.keys.access !== 'full') throw new ScrateError(VOLUMES_NEED_FULL_KEY);
}

/** A new volume ID and a new session: random. */
export function newVolumeId(): string {
  return randomBytes(16).toString('hex');
}

export function newSession(): string {
  return randomBytes(8).toString('hex');
}

/** Why `name` cannot name a volume, or null. It names the head's file node too, so the tree's rules hold. */
export function volumeNameProblem(name: string): string | null {
  if (name === '' || name === '.' || name === '..') return 'a volume name cannot be empty, "." or ".."';
  if (name.includes('/') || name.includes('\0')) return 'a volume name cannot contain "/" or NUL';
  if (Buffer.byteLength(name) > 255) return 'a volume name is at most 255 bytes';
  return null;
}

export function checkVolumeName(name: string): void {
  const problem = volumeNameProblem(name);
  if (problem) throw new ScrateError(`${problem}: ${JSON.stringify(name)}`);
}

/** Why a block size is not one a volume may have, or null: a power of two from 4 KiB to 1 MiB. */
export function blockSizeProblem(blockSize: number): string | null {
  const power = Number.isSafeInteger(blockSize) && blockSize > 0 && (blockSize & (blockSize - 1)) === 0;
  return power && blockSize >= MIN_BLOCK && blockSize <= MAX_BLOCK ? null : 'the block size must be a power of two from 4K to 1M';
}

/**
 * Why a size is not one a volume of `blockSize` may have, or null: whole sectors, what the
 * deepest map covers, and what a tree node's size holds exactly (2^53 − 1, below NBD's 2^63).
 */
export function sizeProblem(size: number, blockSize: number): string | null {
  if (!Number.isSafeInteger(size) || size <= 0) return 'the size must be a whole number of bytes above 0, at most 8 PiB';
  if (size % SECTOR !== 0) return `the size must be a multiple of ${SECTOR} bytes`;
  if (size / blockSize > MAX_MAP_BLOCKS) return `the size is more than ${MAX_MAP_BLOCKS} blocks`;
  return null;
}

/** Saves a record, signed by this (full) key; returns its object name. */
export async function saveVolumeRecord(repo: Repository, record: VolumeRecord): Promise<string> {
  requireFull(repo);
  parseVolumeRecord(Buffer.from(JSON.stringify(record)), 'new');
  return repo.saveObject('volumes', ObjectKind.volume, Buffer.from(JSON.stringify(record)));
}

/** A record's fields for a new record of this process: the writer's host tag and the time now. */
export function recordStamp(repo: Repository): Pick<VolumeRecord, 'host' | 'time'> {
  return { host: hostTag(repo), time: new Date().toISOString() };
}

/**
 * A record's JSON, checked and rebuilt from its known fields: only the full writer signs
 * records, but a reader still refuses what it would misuse (a name that is no file name, a
 * size the map cannot cover).
 */
export function parseVolumeRecord(json: Buffer, name: string): VolumeRecord {
  const bad = (detail: string) => new IntegrityError(`volume record ${name.slice(0, 8)}`, detail);
  const j = jsonObject(json, bad);
  const { volume, name: volumeName, size, blockSize, created, seq, session, host, time, tree, commit, pending } = j;
  if (typeof volume !== 'string' || !VOLUME_ID.test(volume)) throw bad('bad volume ID');
  if (typeof volumeName !== 'string' || volumeNameProblem(volumeName)) throw bad('bad name');
  if (typeof blockSize !== 'number' || blockSizeProblem(blockSize)) throw bad('bad block size');
  if (typeof size !== 'number' || sizeProblem(size, blockSize)) throw bad('bad size');
  if (!isIsoTime(created) || !isIsoTime(time)) throw bad('bad time');
  if (!Number.isSafeInteger(seq) || (seq as number) < 1) throw bad('bad seq');
  if (typeof session !== 'string' || !SESSION.test(session)) throw bad('bad session');
  if (typeof host !== 'string' || host.length > 64) throw bad('bad host');
  if (typeof tree !== 'string' || !HEX_ID.test(tree)) throw bad('bad tree ID');
  if (commit !== null && (typeof commit !== 'string' || !HEX_ID.test(commit))) throw bad('bad commit');
  if (typeof pending !== 'boolean') throw bad('bad pending');
  return { volume, name: volumeName, size, blockSize, created, seq: seq as number, session, host, time, tree, commit, pending };
}

/**
 * Every record this key accepts (all seqs), in listing order. One that is damaged, forged,
 * signed by a write-only writer or malformed is left out and reported through `onSkipped`:
 * nothing a planter puts in volumes/ stops a listing.
 */
export async function loadVolumeRecords(repo: Repository, onSkipped?: (name: string, err: IntegrityError) => void): Promise<VolumeEntry[]> {
  // Format version 2 had no volumes.
  if (repo.codec.version === 2) return [];
  requireFull(repo);
  const out: VolumeEntry[] = [];
  for (const name of await repo.listNames('volumes')) {
    try {
      out.push(await loadVolumeRecord(repo, name));
    } catch (err) {
      // Superseded and deleted since the listing, by the volume's writer: its newer record is listed too, or comes later.
      if (err instanceof NotFoundError) continue;
      if (!(err instanceof IntegrityError)) throw err;
      onSkipped?.(name, err);
    }
  }
  return out;
}

async function loadVolumeRecord(repo: Repository, name: string): Promise<VolumeEntry> {
  const { payload, writer } = await repo.loadObject('volumes', ObjectKind.volume, name);
  const what = `volume record ${name.slice(0, 8)}`;
  if (writer.access !== 'full') throw new RefusedError(what, 'not signed by the full writer');
  try {
    return { name, record: parseVolumeRecord(payload, name), writer };
  } catch (err) {
    // Signed, so not damage: its writer wrote it so.
    if (err instanceof IntegrityError && !(err instanceof RefusedError)) throw new RefusedError(what, err.message.replace(/^volume record \w+: /, ''));
    throw err;
  }
}

/** The live record of each volume (its highest seq; equal seqs: the later name), ordered by name. */
export function latestRecords(all: readonly VolumeEntry[]): VolumeEntry[] {
  const latest = new Map<string, VolumeEntry>();
  for (const e of all) {
    const had = latest.get(e.record.volume);
    if (!had || e.record.seq > had.record.seq || (e.record.seq === had.record.seq && e.name > had.name)) latest.set(e.record.volume, e);
  }
  return [...latest.values()].sort((a, b) => a.record.name.localeCompare(b.record.name) || a.record.volume.localeCompare(b.record.volume));
}

/** Each volume's live record (see latestRecords); skipped ones are reported through `onSkipped`. */
export async function listVolumeRecords(repo: Repository, onSkipped?: (name: string, err: IntegrityError) => void): Promise<VolumeEntry[]> {
  return latestRecords(await loadVolumeRecords(repo, onSkipped));
}

/** A volume by its name, or else a unique prefix of its ID. */
export function pickVolume(volumes: readonly VolumeEntry[], spec: string): VolumeEntry {
  const named = volumes.filter((v) => v.record.name === spec);
  if (named.length === 1) return named[0]!;
  if (named.length > 1) throw new ScrateError(`${named.length} volumes are named ${JSON.stringify(spec)}`, ExitCode.fatal, 'give the volume ID (`scrate volume list`)');
  const byId = /^[0-9a-f]+$/i.test(spec) ? volumes.filter((v) => v.record.volume.startsWith(spec.toLowerCase())) : [];
  if (byId.length === 1) return byId[0]!;
  if (byId.length > 1) throw new ScrateError(`volume ID prefix ${spec} is ambiguous (${byId.length} match)`, ExitCode.fatal, 'give more characters of the ID');
  throw new ScrateError(`no volume ${JSON.stringify(spec)}`, ExitCode.fatal, 'list them with `scrate volume list`');
}

/** The live record of the volume `spec` names (see pickVolume). */
export async function findVolume(repo: Repository, spec: string, onSkipped?: (name: string, err: IntegrityError) => void): Promise<VolumeEntry> {
  return pickVolume(await listVolumeRecords(repo, onSkipped), spec);
}

/**
 * Deletes the records of `volume` below seq `keep` (all of them without `keep`): after a new
 * record is saved, and at `volume rm`. Records that no longer decode are left alone.
 */
export async function deleteOlderRecords(repo: Repository, volume: string, keep?: number): Promise<number> {
  let n = 0;
  for (const { name, record } of await loadVolumeRecords(repo)) {
    if (record.volume !== volume || (keep !== undefined && record.seq >= keep)) continue;
    await repo.backend.remove('volumes', name);
    n++;
  }
  return n;
}

/**
 * Heads as the roots a walk of snapshots takes (usage, check): each record's tree, under the
 * record's name, as if it were a commit of the volume.
 */
export function headRoots(entries: readonly VolumeEntry[]): SnapshotEntry[] {
  return entries.map(({ name, record, writer }) => ({
    id: name,
    writer,
    snapshot: { time: record.time, tree: record.tree, paths: [`/${record.name}`], hostname: '', username: '', uid: 0, gid: 0, tags: ['volume'], programVersion: '', volume: record.volume },
  }));
}

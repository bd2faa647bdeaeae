import { jsonTime } from '../cli/local-time.js';
import type { SnapshotEntry } from '../snapshot/snapshot.js';

/** A directory of snapshots by name, oldest first, and which name is the newest. */
export interface SnapshotNames {
  /** Name (its bytes as latin1) → snapshot. */
  byName: Map<string, SnapshotEntry>;
  latest?: string;
}

/** The directories above the snapshots, as restic's mount shows them. */
export interface Layout {
  snapshots: SnapshotNames;
  ids: SnapshotNames;
  hosts: Map<string, SnapshotNames>;
  tags: Map<string, SnapshotNames>;
}

const NAME_MAX = 255;

/**
 * A snapshot's time as a directory name, restic's default template (RFC 3339 in local time, to
 * the second: "2026-12-04T03:00:01+01:00"); ASCII, so its latin1 key is its text.
 */
export function timeName(iso: string): string {
  const seconds = Math.floor(Date.parse(iso) / 1000);
  return jsonTime(BigInt(seconds) * 1_000_000_000n);
}

/**
 * A host name or tag, which any writer chose, as one safe directory name: no slash or NUL,
 * never empty, "." or "..", and short enough for a name (collisions are numbered by `add`).
 */
export function safeName(text: string): string {
  let name = text.replace(/[/\0]/g, '_');
  if (name === '' || name === '.' || name === '..') name = `_${name}`;
  let bytes = Buffer.from(name, 'utf8');
  if (bytes.length > NAME_MAX - 8) bytes = bytes.subarray(0, NAME_MAX - 8);
  return bytes.toString('latin1');
}

/** Adds under `name`, or, when that is taken, under name-1, name-2, … (restic numbers duplicate times so). */
function add(dir: SnapshotNames, name: string, entry: SnapshotEntry): void {
  let unique = name;
  for (let n = 1; dir.byName.has(unique); n++) unique = `${name}-${n}`;
  dir.byName.set(unique, entry);
  dir.latest = unique;
}

function group(dirs: Map<string, SnapshotNames>, key: string, entry: SnapshotEntry): void {
  let dir = dirs.get(key);
  if (!dir) dirs.set(key, (dir = { byName: new Map() }));
  add(dir, timeName(entry.snapshot.time), entry);
}

/** The layout of snapshots listed oldest first. */
export function buildLayout(entries: readonly SnapshotEntry[]): Layout {
  const layout: Layout = { snapshots: { byName: new Map() }, ids: { byName: new Map() }, hosts: new Map(), tags: new Map() };
  // Host names and tags are made safe once each, and two that become one name are told apart.
  const hostNames = new SafeNames();
  const tagNames = new SafeNames();
  for (const e of entries) {
    add(layout.snapshots, timeName(e.snapshot.time), e);
    add(layout.ids, e.id.slice(0, 8), e);
    group(layout.hosts, hostNames.of(e.snapshot.hostname), e);
    for (const tag of new Set(e.snapshot.tags)) group(layout.tags, tagNames.of(tag), e);
  }
  // ids/ has no `latest`, as in restic.
  delete layout.ids.latest;
  return layout;
}

/** Distinct safe names for distinct texts. */
class SafeNames {
  private readonly names = new Map<string, string>();
  private readonly taken = new Set<string>();

  of(text: string): string {
    let name = this.names.get(text);
    if (name !== undefined) return name;
    const base = safeName(text);
    name = base;
    for (let n = 1; this.taken.has(name); n++) name = `${base}-${n}`;
    this.names.set(text, name);
    this.taken.add(name);
    return name;
  }
}

import { constants, lstatSync } from 'node:fs';
import type { ProgressMeter } from '../util/progress.js';
import { EventLoopTurns } from '../util/event-loop.js';
import { listDirectory } from './dir-listing.js';
import type { BackupFilter } from '../filter/backup-filter.js';

/** The scan's slices of the main thread: short, so that the backup's walk is hardly slowed. */
const SCAN_TURN_MS = 1;

/**
 * Counts the files and bytes a backup of `sources` will look at, beside the backup (as restic's
 * scanner does), into the meter's totals: what percent and ETA are computed from. One native
 * listing per directory, as the backup's walk does, with the same filter and filesystem
 * boundaries; what cannot be listed is left out (the backup reports it). Stops when `signal` is.
 */
export async function scanSources(sources: string[], opts: { filter?: BackupFilter; oneFileSystem?: boolean }, meter: ProgressMeter, signal: AbortSignal): Promise<void> {
  const turns = new EventLoopTurns(SCAN_TURN_MS);
  const devices = new Set<bigint>();
  const dirs: Buffer[] = [];
  for (const source of sources) {
    let st;
    try {
      if (opts.filter?.rejectsPath(source)) continue;
      st = lstatSync(source, { bigint: true });
    } catch {
      continue;
    }
    devices.add(st.dev);
    if (st.isDirectory()) dirs.push(Buffer.from(source));
    else count(meter, Number(st.mode), Number(st.size));
  }
  while (dirs.length > 0) {
    if (signal.aborted) return;
    const turn = turns.due();
    if (turn) await turn;
    const dir = dirs.pop()!;
    let entries;
    try {
      entries = listDirectory(dir);
    } catch {
      continue;
    }
    const separator = dir.length === 1 ? '' : '/';
    for (const { name, stat } of entries) {
      if (!stat) continue;
      const child = Buffer.concat([dir, Buffer.from(separator), name]);
      const isDir = (stat.mode & constants.S_IFMT) === constants.S_IFDIR;
      if (opts.filter?.rejectsPath(child.toString()) || opts.filter?.rejectsEntry(isDir, stat.size)) continue;
      if (isDir) {
        if (!opts.oneFileSystem || devices.has(stat.dev)) dirs.push(child);
      } else count(meter, stat.mode, stat.size);
    }
  }
  meter.totalsFinal = true;
}

function count(meter: ProgressMeter, mode: number, size: number): void {
  if ((mode & constants.S_IFMT) !== constants.S_IFREG) return;
  meter.totalFiles++;
  meter.totalBytes += size;
}

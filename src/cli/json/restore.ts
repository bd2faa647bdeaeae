import type { Output } from '../output.js';
import { StatusTicker } from './status-ticker.js';

/** What a restore has done so far; the totals when known (a disk image's size is). */
export interface RestoreCounts {
  files: number;
  bytes: number;
  totalFiles?: number;
  totalBytes?: number;
}

/**
 * `restore --json`: restic 0.16's `status` lines (every second, and at the end) and its
 * `summary`, with scrate's own counts after restic's. See docs/JSON.md.
 */
export class RestoreJson {
  private counts: RestoreCounts | undefined;
  private readonly ticker: StatusTicker;

  constructor(private readonly out: Output) {
    this.ticker = new StatusTicker(out, (seconds, done) => (this.counts ? { seconds_elapsed: seconds, ...restic(this.counts, done) } : undefined));
  }

  /** The restorer's latest counts, for the next status line. */
  progress(counts: RestoreCounts): void {
    this.counts = counts;
  }

  finish(counts: RestoreCounts, extras: object): void {
    this.counts = counts;
    this.ticker.finish();
    const { percent_done: _, ...done } = restic(counts, true);
    this.out.jsonLine({ message_type: 'summary', seconds_elapsed: Math.floor(this.ticker.seconds), ...done, ...extras });
  }

  stop(): void {
    this.ticker.stop();
  }
}

/** restic's fields; when done, what was restored is the total (scrate does not count ahead). */
function restic(c: RestoreCounts, done: boolean): Record<string, number> {
  const totalFiles = c.totalFiles ?? (done ? c.files : undefined);
  const totalBytes = c.totalBytes ?? (done ? c.bytes : undefined);
  return {
    percent_done: totalBytes ? c.bytes / totalBytes : done ? 1 : 0,
    ...(totalFiles !== undefined ? { total_files: totalFiles } : {}),
    files_restored: c.files,
    ...(totalBytes !== undefined ? { total_bytes: totalBytes } : {}),
    bytes_restored: c.bytes,
  };
}

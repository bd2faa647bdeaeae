import type { BackupResult, ItemDone } from '../../archiver/archiver.js';
import type { BackupSummary } from '../../snapshot/snapshot.js';
import { shortId } from '../../repository/ids.js';
import type { Output } from '../output.js';
import { errorMessage } from './messages.js';
import { summaryJson } from './snapshot.js';
import { StatusTicker } from './status-ticker.js';

/**
 * `backup --json`: restic's JSON lines. `status` lines every second and once at the end,
 * `verbose_status` per file and directory with -v, `error` lines on stderr, and the `summary`.
 * See docs/JSON.md.
 */
export class BackupJson {
  private current = '';
  private summary: Readonly<BackupSummary> | undefined;
  private readonly ticker: StatusTicker;

  constructor(private readonly out: Output) {
    this.ticker = new StatusTicker(out, (seconds, done) => this.status(seconds, done));
  }

  /** The archiver's onProgress: remembered for the next status line. */
  readonly progress = (summary: Readonly<BackupSummary>, currentPath: string): void => {
    this.summary = summary;
    this.current = currentPath;
  };

  /** The archiver's onItem: restic's verbose_status (printed with -v only). */
  readonly item = (item: ItemDone): void => {
    if (!this.out.verbose) return;
    this.out.jsonLine({
      message_type: 'verbose_status',
      action: item.action,
      item: item.path,
      duration: item.ms / 1000,
      data_size: item.bytesRead,
      data_size_in_repo: 0,
      metadata_size: 0,
      metadata_size_in_repo: 0,
      total_files: 0,
    });
  };

  /** The archiver's onError: restic's error message, on stderr. */
  readonly error = (path: string, message: string): void => {
    this.out.jsonLine(errorMessage(path, message, 'archival'), process.stderr);
  };

  /** The last status line (everything done) and the summary. */
  finish(result: BackupResult, dryRun: boolean): void {
    this.summary = result.snapshot.summary!;
    this.current = '';
    this.ticker.finish();
    this.out.jsonLine({
      message_type: 'summary',
      ...summaryJson(this.summary),
      total_duration: this.ticker.seconds,
      ...(result.snapshotId ? { snapshot_id: shortId(result.snapshotId) } : {}),
      dry_run: dryRun,
      ...(result.snapshotId ? { full_snapshot_id: result.snapshotId } : {}),
      ...(result.parentId ? { parent: result.parentId } : {}),
    });
  }

  /** Stops the status lines of a backup that failed. */
  stop(): void {
    this.ticker.stop();
  }

  /**
   * A status line. The totals (and so the time remaining) are known only when everything is
   * done (scrate does not scan ahead yet): until then they are left out, and percent_done is 0.
   */
  private status(seconds: number, done: boolean): object | undefined {
    const s = this.summary;
    if (!s) return undefined;
    const files = s.filesNew + s.filesChanged + s.filesUnmodified;
    return {
      seconds_elapsed: seconds,
      ...(done ? { seconds_remaining: 0 } : {}),
      percent_done: done ? 1 : 0,
      ...(done ? { total_files: files } : {}),
      files_done: files,
      ...(done ? { total_bytes: s.bytesProcessed } : {}),
      bytes_done: s.bytesProcessed,
      error_count: s.errors,
      current_files: this.current ? [this.current] : [],
    };
  }
}

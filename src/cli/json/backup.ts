import type { BackupResult, ItemDone } from '../../archiver/archiver.js';
import type { BackupSummary } from '../../snapshot/snapshot.js';
import { shortId } from '../../repository/ids.js';
import type { ProgressMeter } from '../../util/progress.js';
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
  private summary: Readonly<BackupSummary> | undefined;
  private readonly ticker: StatusTicker;

  /** `meter` is the backup's: what the status lines say while it runs. */
  constructor(
    private readonly out: Output,
    private readonly meter: ProgressMeter,
  ) {
    this.ticker = new StatusTicker(out, (seconds, done) => this.status(seconds, done));
  }

  /** The archiver's onItem: restic's verbose_status (printed with -v only). */
  readonly item = (item: ItemDone): void => {
    if (this.out.verbosity < 1) return;
    this.out.printJson({
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

  /** The last status line (everything done, once) and a summary per repository. */
  finish(result: BackupResult, dryRun: boolean, repository: string): void {
    if (!this.summary) {
      this.summary = result.snapshot.summary!;
      this.ticker.finish();
    }
    this.out.jsonLine({
      message_type: 'summary',
      ...summaryJson(result.snapshot.summary!),
      total_duration: this.ticker.seconds,
      ...(result.snapshotId ? { snapshot_id: shortId(result.snapshotId) } : {}),
      dry_run: dryRun,
      ...(result.snapshotId ? { full_snapshot_id: result.snapshotId } : {}),
      ...(result.parentId ? { parent: result.parentId } : {}),
      repository,
    });
  }

  /** Stops the status lines of a backup that failed. */
  stop(): void {
    this.ticker.stop();
  }

  /** A status line: the meter's while the backup runs (totals from the scan beside it), the summary's at the end. */
  private status(seconds: number, done: boolean): object {
    const s = this.summary;
    if (!done || !s) return { ...this.meter.snapshot(), seconds_elapsed: seconds };
    const files = s.filesNew + s.filesChanged + s.filesUnmodified;
    return {
      seconds_elapsed: seconds,
      seconds_remaining: 0,
      percent_done: 1,
      total_files: files,
      files_done: files,
      total_bytes: s.bytesProcessed,
      bytes_done: s.bytesProcessed,
      error_count: s.errors,
      current_files: [],
    };
  }
}

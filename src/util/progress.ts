/**
 * How far a long command is, as one plain object: the terminal's status line and backup's JSON
 * status lines are two renderings of it. The names are those of restic's JSON status message,
 * so that a wrapper written for restic reads them unchanged.
 */
export interface Progress {
  seconds_elapsed: number;
  /** Only once the totals are final and something is done (restic's rule). */
  seconds_remaining?: number;
  /** 0 to 1: of the bytes when a byte total is known, else of the items. */
  percent_done: number;
  /** What the scan beside the work has found so far (final once `seconds_remaining` can be given). */
  total_files: number;
  files_done: number;
  total_bytes: number;
  bytes_done: number;
  error_count: number;
  /** What is being worked on now (a few at most). */
  current_files: string[];
}

/**
 * The counters an engine updates as it goes (plain fields: bumped per file, they must cost
 * nothing) and a scan beside it fills in the totals of; snapshot() is read by whoever shows them,
 * on its own clock.
 */
export class ProgressMeter {
  readonly started = Date.now();
  totalFiles = 0;
  totalBytes = 0;
  /** The scan is done: the totals no longer grow. */
  totalsFinal = false;
  filesDone = 0;
  bytesDone = 0;
  errors = 0;
  current: string[] = [];

  snapshot(now = Date.now()): Progress {
    const elapsedMs = now - this.started;
    const fraction = this.totalBytes > 0 ? this.bytesDone / this.totalBytes : this.totalFiles > 0 ? this.filesDone / this.totalFiles : 0;
    const percent = Math.min(fraction, 1);
    const progress: Progress = {
      seconds_elapsed: Math.floor(elapsedMs / 1000),
      percent_done: percent,
      total_files: this.totalFiles,
      files_done: this.filesDone,
      total_bytes: this.totalBytes,
      bytes_done: this.bytesDone,
      error_count: this.errors,
      current_files: this.current.filter((f) => f !== ''),
    };
    if (this.totalsFinal && percent > 0) progress.seconds_remaining = Math.max(Math.round((elapsedMs / 1000) * ((1 - percent) / percent)), 0);
    return progress;
  }
}

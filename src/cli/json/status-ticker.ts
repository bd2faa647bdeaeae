import type { Output } from '../output.js';

/** How often a `status` line is printed while a command runs: once a second unless SCRATE_PROGRESS_FPS (restic's RESTIC_PROGRESS_FPS) says otherwise. */
function statusIntervalMs(): number {
  const fps = Number(process.env['SCRATE_PROGRESS_FPS']);
  return fps > 0 ? 1000 / fps : 1000;
}

/**
 * restic's `status` lines under --json: one a second while a command runs (from its latest
 * progress), and a last one when it is done.
 */
export class StatusTicker {
  private readonly started = performance.now();
  private readonly timer: NodeJS.Timeout;

  /** `line` builds the status line (without message_type), undefined while nothing is known yet. */
  constructor(
    private readonly out: Output,
    private readonly line: (secondsElapsed: number, done: boolean) => object | undefined,
  ) {
    this.timer = setInterval(() => this.print(false), statusIntervalMs());
    // Never what keeps the process alive.
    this.timer.unref();
  }

  get seconds(): number {
    return (performance.now() - this.started) / 1000;
  }

  /** The last status line. */
  finish(): void {
    this.stop();
    this.print(true);
  }

  /** No more lines (the command failed). */
  stop(): void {
    clearInterval(this.timer);
  }

  private print(done: boolean): void {
    const status = this.line(Math.floor(this.seconds), done);
    if (status) this.out.jsonLine({ message_type: 'status', ...status });
  }
}

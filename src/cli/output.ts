import type { ProgressMeter } from '../util/progress.js';
import { progressText } from './progress-text.js';
import { StatusLine } from './status-line.js';
import { caughtUp, flushGathered, gather } from './stdout.js';

/** How the user asked to be talked to; every command prints through this. */
export class Output {
  private status: StatusLine | undefined;
  private following: NodeJS.Timeout | undefined;

  constructor(
    readonly json: boolean,
    readonly quiet: boolean,
    /** -v: 1, -vv: 2. */
    readonly verbosity: number,
  ) {}

  /** Normal human-readable output (suppressed by --quiet and --json). */
  info(line: string): void {
    if (!this.quiet && !this.json) this.write(process.stdout, line);
  }

  detail(line: string): void {
    if (this.verbosity > 0 && !this.json) this.write(process.stderr, line);
  }

  /**
   * As info(), for output without bound (the entries of ls, diff and find): gathered into large
   * writes, and the command awaits ready() between lines.
   */
  print(line: string): void {
    if (!this.quiet && !this.json) gather(`${line}\n`);
  }

  /** As jsonLine() on stdout, for output without bound. */
  printJson(value: unknown): void {
    this.printJsonText(JSON.stringify(value) + '\n');
  }

  /** Part of a JSON document without bound (find's one array), as it is produced. */
  printJsonText(text: string): void {
    gather(text);
  }

  /**
   * Undefined while standard output's reader keeps up with print(); else a promise that settles
   * once it has caught up. Both throw `signal`'s reason once it is aborted (the reader went away).
   */
  ready(signal: AbortSignal): Promise<void> | undefined {
    return caughtUp(signal);
  }

  /**
   * A line of restic's -vv listing (every file of a backup), on stdout as restic prints it;
   * gathered as print() is, unless a status line shares the terminal.
   */
  listing(line: string): void {
    if (!this.listsFiles) return;
    if (this.status) this.write(process.stdout, line);
    else gather(`${line}\n`);
  }

  get listsFiles(): boolean {
    return this.verbosity > 1 && !this.json && !this.quiet;
  }

  /** Problems that do not stop the command; always shown, on stderr. */
  warn(line: string): void {
    this.write(process.stderr, `warning: ${line}`);
  }

  /** One JSON message, on one line as restic prints them (scripts read them line by line); errors go to stderr. */
  jsonLine(value: unknown, stream: NodeJS.WriteStream = process.stdout): void {
    this.write(stream, JSON.stringify(value));
  }

  table(headers: string[], rows: string[][]): void {
    const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
    this.info(line(headers));
    this.info(widths.map((w) => '-'.repeat(w)).join('  '));
    for (const r of rows) this.info(line(r));
  }

  /** Whether progress() shows anything: commands pass progress callbacks only then, so that cron runs do not format a line per file. */
  get showsProgress(): boolean {
    return !this.quiet && !this.json && StatusLine.possible(process.stderr);
  }

  /** A live status line, only on a terminal and only when not quiet. */
  progress(text: string): void {
    if (!this.showsProgress) return;
    this.status ??= new StatusLine(process.stderr);
    this.status.set(text);
  }

  /** Shows `meter` in the status line until stopProgress(). */
  follow(meter: ProgressMeter | undefined, noun = 'files'): void {
    if (!meter || !this.showsProgress) return;
    const show = () => this.progress(progressText(meter.snapshot(), noun));
    show();
    this.following = setInterval(show, FOLLOW_MS);
    this.following.unref();
  }

  stopProgress(): void {
    clearInterval(this.following);
    this.status?.stop();
    this.status = undefined;
  }

  private write(stream: NodeJS.WriteStream, line: string): void {
    this.status?.clear();
    flushGathered();
    stream.write(line + '\n');
    this.status?.draw();
  }
}

/** How often a followed meter is read. */
const FOLLOW_MS = 200;

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

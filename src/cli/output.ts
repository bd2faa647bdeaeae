import type { Ora } from 'ora';

/** ora is loaded only where a spinner can show (a terminal): it costs ~0.1 s of start-up. */
let loadedOra: typeof import('ora').default | undefined;

/**
 * Called once at start-up; without it (no terminal) progress() shows nothing. A terminal that
 * reports no width (`script` into a file, some serial consoles) gets none either: ora then
 * clears lines without end.
 */
export async function loadSpinner(): Promise<void> {
  if (process.stderr.isTTY && process.stderr.columns > 0) loadedOra = (await import('ora')).default;
}

/** How the user asked to be talked to; every command prints through this. */
export class Output {
  private spinner: Ora | undefined;

  constructor(
    readonly json: boolean,
    readonly quiet: boolean,
    readonly verbose: boolean,
  ) {}

  /** Normal human-readable output (suppressed by --quiet and --json). */
  info(line: string): void {
    if (!this.quiet && !this.json) this.write(process.stdout, line);
  }

  detail(line: string): void {
    if (this.verbose && !this.json) this.write(process.stderr, line);
  }

  /** Problems that do not stop the command; always shown, on stderr. */
  warn(line: string): void {
    this.write(process.stderr, `warning: ${line}`);
  }

  /** One JSON message, on one line as restic prints them (scripts read them line by line); errors go to stderr. */
  jsonLine(value: unknown, stream: NodeJS.WriteStream = process.stdout): void {
    stream.write(JSON.stringify(value) + '\n');
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
    return !this.quiet && !this.json && loadedOra !== undefined;
  }

  /** A live status line, only on a terminal and only when not quiet. */
  progress(text: string): void {
    if (!this.showsProgress) return;
    this.spinner ??= loadedOra!({ stream: process.stderr }).start();
    this.spinner.text = text;
  }

  stopProgress(): void {
    this.spinner?.stop();
    this.spinner = undefined;
  }

  private write(stream: NodeJS.WriteStream, line: string): void {
    if (this.spinner) this.spinner.clear();
    stream.write(line + '\n');
    this.spinner?.render();
  }
}

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

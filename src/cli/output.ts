import ora, { type Ora } from 'ora';

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

  /** The machine-readable result of a command under --json. */
  result(value: unknown): void {
    process.stdout.write(JSON.stringify(value, null, 2) + '\n');
  }

  table(headers: string[], rows: string[][]): void {
    const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
    this.info(line(headers));
    this.info(widths.map((w) => '-'.repeat(w)).join('  '));
    for (const r of rows) this.info(line(r));
  }

  /** A live status line, only on a terminal and only when not quiet. */
  progress(text: string): void {
    if (this.quiet || this.json || !process.stderr.isTTY) return;
    this.spinner ??= ora({ stream: process.stderr }).start();
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

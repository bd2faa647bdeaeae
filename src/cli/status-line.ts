/**
 * A status line redrawn in place at the foot of a terminal: what ora did for us, without what
 * made Ctrl-C go unheard (ora reads the terminal in raw mode to discard typing, so the terminal
 * no longer turns Ctrl-C into SIGINT) and without hiding the cursor (nothing to restore when
 * the process ends in any way). The line is cut to the terminal's width: a wrapped line would
 * leave its first part behind at each redraw.
 */
export class StatusLine {
  private text = '';
  private drawn = '';
  private readonly timer: NodeJS.Timeout;

  /** A terminal that reports no width (`script` into a file, some serial consoles) gets no line. */
  static possible(stream: NodeJS.WriteStream): boolean {
    return !!stream.isTTY && stream.columns > 0;
  }

  constructor(private readonly stream: NodeJS.WriteStream) {
    // Redrawn at most ten times a second, however often the text changes.
    this.timer = setInterval(() => this.text !== this.drawn && this.draw(), REDRAW_MS);
    this.timer.unref();
  }

  set(text: string): void {
    const first = this.drawn === '' && this.text === '';
    this.text = text;
    if (first) this.draw();
  }

  draw(): void {
    const width = Math.max(this.stream.columns - 1, 1);
    const line = [...this.text].slice(0, width).join('');
    this.stream.write(`\r${line}\x1b[K`);
    this.drawn = this.text;
  }

  /** Makes room for a line printed above: the next draw() puts the status back. */
  clear(): void {
    this.stream.write('\r\x1b[K');
  }

  stop(): void {
    clearInterval(this.timer);
    this.clear();
  }
}

const REDRAW_MS = 100;

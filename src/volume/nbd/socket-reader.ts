import type { Socket } from 'node:net';

/** What a connection may hold unread before the socket is paused: the client then waits in TCP. */
const HIGH_WATER = 4 * 1024 * 1024;

/** The peer went away (or sent less than a message): the connection ends, nothing is answered. */
export class ConnectionClosed extends Error {
  constructor() {
    super('connection closed');
    this.name = 'ConnectionClosed';
  }
}

/**
 * Reads exact byte counts from a socket: the protocol is a sequence of fixed headers and
 * lengths, so `read(n)` is all the parser needs. Paused while unread bytes pile up.
 */
export class SocketReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private waiter?: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void };
  private closed = false;

  constructor(private readonly socket: Socket) {
    socket.on('data', (data: Buffer) => {
      this.chunks.push(data);
      this.buffered += data.length;
      if (this.buffered > HIGH_WATER) socket.pause();
      this.serve();
    });
    const close = () => {
      this.closed = true;
      this.serve();
    };
    socket.on('end', close);
    socket.on('close', close);
    socket.on('error', close);
  }

  read(n: number): Promise<Buffer> {
    if (this.waiter) throw new Error('one read at a time');
    return new Promise((resolve, reject) => {
      this.waiter = { n, resolve, reject };
      this.serve();
    });
  }

  private serve(): void {
    const w = this.waiter;
    if (!w) return;
    if (this.buffered >= w.n) {
      this.waiter = undefined;
      w.resolve(this.take(w.n));
      if (this.buffered <= HIGH_WATER && this.socket.isPaused()) this.socket.resume();
    } else if (this.closed) {
      this.waiter = undefined;
      w.reject(new ConnectionClosed());
    } else if (this.socket.isPaused()) {
      // A message larger than the high-water mark: let it in.
      this.socket.resume();
    }
  }

  private take(n: number): Buffer {
    const first = this.chunks[0];
    if (first && first.length >= n) {
      this.buffered -= n;
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - at);
      c.copy(out, at, 0, k);
      at += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.buffered -= n;
    return out;
  }
}

import type { Socket } from 'node:net';
import { Budget } from '../../util/budget.js';
import { errnoOf, NbdError, type ReadPiece } from './export.js';
import { ALLOCATION_CONTEXT, MAX_PAYLOAD, type Negotiated } from './handshake.js';
import {
  blockStatusChunk,
  Cmd,
  CmdFlag,
  doneChunk,
  Errno,
  errorChunk,
  offsetDataHeader,
  offsetHole,
  REQUEST_MAGIC,
  simpleReply,
  type Extent,
} from './protocol.js';
import type { SocketReader } from './socket-reader.js';

/** Bytes of requests a connection works on at once (reads being answered, writes being stored). */
const IN_FLIGHT_BYTES = 64 * 1024 * 1024;
/** What a request without data counts against that budget, so that a flood of them is bounded too. */
const REQUEST_COST = 4096;
/** How long a stopping connection may take to send its last replies. */
const STOP_GRACE_MS = 2000;
/** base:allocation descriptors in one reply (the protocol asks for at most 2^20). */
const MAX_EXTENTS = 1024;

interface Request {
  flags: number;
  type: number;
  cookie: Buffer;
  offset: number;
  length: number;
  data?: Buffer;
}

/**
 * The transmission phase of one connection: requests are read in order and answered as each
 * completes (the protocol lets replies overtake each other), with at most IN_FLIGHT_BYTES
 * under way; reading stops while that is spent, which holds the client back in TCP.
 */
export class Transmission {
  private readonly budget = new Budget(IN_FLIGHT_BYTES);
  private readonly running = new Set<Promise<void>>();
  private stopping = false;

  constructor(
    private readonly reader: SocketReader,
    private readonly socket: Socket,
    private readonly session: Negotiated,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Serves until the client disconnects, breaks the protocol, or `stop` is called; then waits for what is under way. */
  async run(): Promise<void> {
    try {
      while (!this.stopping) {
        const request = await this.next();
        if (!request || this.stopping) break;
        const cost = Math.max(REQUEST_COST, request.type === Cmd.READ || request.type === Cmd.WRITE ? request.length : 0);
        await this.budget.admit(cost);
        // Stopped meanwhile: this request is not answered, so it did not happen (a write is not applied).
        if (this.stopping) {
          this.budget.release(cost);
          break;
        }
        const work = this.answer(request).finally(() => {
          this.running.delete(work);
          this.budget.release(cost);
        });
        this.running.add(work);
        // Replies the client does not read hold memory too: no new request until they have gone.
        if (this.socket.writableNeedDrain) await this.drained();
      }
    } finally {
      await Promise.allSettled([...this.running]);
      this.socket.end();
    }
  }

  /**
   * Takes no further request; those under way are answered, then the connection ends: closed
   * once the replies are out, or after STOP_GRACE_MS by force (a client that reads nothing
   * more cannot hold the server open).
   */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.allSettled([...this.running]);
    setTimeout(() => this.socket.destroy(), STOP_GRACE_MS).unref();
    this.socket.end(() => this.socket.destroy());
  }

  /** Resolves when the socket can take more, or is gone; no listener is left behind either way. */
  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off('drain', done).off('close', done);
        resolve();
      };
      this.socket.on('drain', done).on('close', done);
    });
  }

  /** The next request, or undefined when the connection is to end (DISC, EOF, garbage). */
  private async next(): Promise<Request | undefined> {
    const h = await this.reader.read(28).catch(() => undefined);
    if (!h || h.readUInt32BE(0) !== REQUEST_MAGIC) return undefined;
    const request: Request = {
      flags: h.readUInt16BE(4),
      type: h.readUInt16BE(6),
      cookie: Buffer.from(h.subarray(8, 16)),
      offset: Number(h.readBigUInt64BE(16)),
      length: h.readUInt32BE(24),
    };
    if (request.type === Cmd.DISC) return undefined;
    if (request.type === Cmd.WRITE) {
      // The payload must be read to stay in step; one the protocol forbids is not read at all.
      if (request.length > MAX_PAYLOAD) return undefined;
      request.data = await this.reader.read(request.length).catch(() => undefined);
      if (!request.data) return undefined;
    }
    return request;
  }

  private async answer(r: Request): Promise<void> {
    const e = this.session.export;
    try {
      const end = r.offset + r.length;
      const beyond = !Number.isSafeInteger(end) || end > e.size;
      const writes = r.type === Cmd.WRITE || r.type === Cmd.TRIM || r.type === Cmd.WRITE_ZEROES;
      if (writes && e.readOnly) throw new NbdError(Errno.EPERM, 'read-only export');
      if (beyond) throw new NbdError(r.type === Cmd.WRITE || r.type === Cmd.WRITE_ZEROES ? Errno.ENOSPC : Errno.EINVAL, 'beyond the end of the export');
      const fua = (r.flags & CmdFlag.FUA) !== 0;
      switch (r.type) {
        case Cmd.READ:
          if (r.length > MAX_PAYLOAD) throw new NbdError(Errno.EINVAL, 'read larger than the maximum payload');
          return this.sendRead(r, await e.read(r.offset, r.length));
        case Cmd.WRITE:
          await e.write(r.offset, r.data!, fua);
          break;
        case Cmd.FLUSH:
          await e.flush();
          break;
        case Cmd.TRIM:
          await e.zero(r.offset, r.length, true, fua);
          break;
        case Cmd.WRITE_ZEROES:
          await e.zero(r.offset, r.length, (r.flags & CmdFlag.NO_HOLE) === 0, fua);
          break;
        case Cmd.BLOCK_STATUS:
          if (!this.session.allocation || r.length === 0) throw new NbdError(Errno.EINVAL, 'no base:allocation context selected');
          return this.send([blockStatusChunk(r.cookie, ALLOCATION_CONTEXT, fitExtents(await e.extents(r.offset, r.length), r))]);
        default:
          throw new NbdError(Errno.EINVAL, `unsupported command ${r.type}`);
      }
      this.send([simpleReply(r.cookie, 0)]);
    } catch (err) {
      const errno = errnoOf(err);
      if (errno === Errno.EIO) this.onError(err);
      const message = err instanceof Error ? err.message : String(err);
      this.send([this.session.structured ? errorChunk(r.cookie, errno, message) : simpleReply(r.cookie, errno)]);
    }
  }

  /** Data and holes as chunks (holes sent as zeros when the client wants one chunk or plain replies). */
  private sendRead(r: Request, pieces: ReadPiece[]): void {
    const total = pieces.reduce((n, p) => n + (Buffer.isBuffer(p) ? p.length : p.zeros), 0);
    if (total !== r.length) throw new NbdError(Errno.EIO, `read returned ${total} bytes of ${r.length}`);
    if (!this.session.structured) return this.send([simpleReply(r.cookie, 0), ...pieces.map(asBytes)]);
    if (r.flags & CmdFlag.DF) {
      return this.send([offsetDataHeader(r.cookie, r.offset, r.length, false), ...pieces.map(asBytes), doneChunk(r.cookie)]);
    }
    const out: Buffer[] = [];
    let at = r.offset;
    for (const p of pieces) {
      if (Buffer.isBuffer(p)) {
        if (p.length) out.push(offsetDataHeader(r.cookie, at, p.length, false), p);
        at += p.length;
      } else {
        if (p.zeros) out.push(offsetHole(r.cookie, at, p.zeros, false));
        at += p.zeros;
      }
    }
    out.push(doneChunk(r.cookie));
    this.send(out);
  }

  private send(buffers: Buffer[]): void {
    if (this.socket.destroyed) return;
    this.socket.cork();
    for (const b of buffers) this.socket.write(b);
    this.socket.uncork();
  }
}

function asBytes(p: ReadPiece): Buffer {
  return Buffer.isBuffer(p) ? p : Buffer.alloc(p.zeros);
}

/** Longest descriptor: 32 bits, kept a multiple of 1 MiB so that the next one starts aligned. */
const MAX_EXTENT = 2 ** 32 - 2 ** 20;

/** The protocol's shape: nonzero 32-bit lengths, one descriptor with REQ_ONE (not past the request), bounded count. */
function fitExtents(extents: readonly Extent[], r: Request): Extent[] {
  const limit = r.flags & CmdFlag.REQ_ONE ? 1 : MAX_EXTENTS;
  const out: Extent[] = [];
  for (const x of extents) {
    if (x.length <= 0) continue;
    // A clamped descriptor ends the list: the next one would not start where it ends.
    if (x.length > MAX_EXTENT) {
      out.push({ ...x, length: MAX_EXTENT });
      break;
    }
    out.push(x);
    if (out.length === limit) break;
  }
  if (out.length === 0) throw new NbdError(Errno.EIO, 'no extent for the range');
  if (r.flags & CmdFlag.REQ_ONE && out[0]!.length > r.length) out[0] = { ...out[0]!, length: r.length };
  return out;
}

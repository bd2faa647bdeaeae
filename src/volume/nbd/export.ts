import { Errno, type Extent } from './protocol.js';

/** A run of `zeros` bytes that reads as zeros without being sent (a hole, when the client allows). */
export interface Zeros {
  zeros: number;
}
export type ReadPiece = Buffer | Zeros;

/**
 * What the NBD server exports: a byte range with the operations of the protocol. Whatever
 * stands behind it (a volume, a snapshot, memory in a test) answers in its own terms; the
 * server only speaks the wire format.
 */
export interface BlockExport {
  readonly name: string;
  readonly description: string;
  readonly size: number;
  readonly readOnly: boolean;
  /** The block size I/O is best aligned to (a power of two, at most 32 MiB). */
  readonly preferredBlock: number;
  /** Pieces in order covering exactly `length` bytes from `offset`. */
  read(offset: number, length: number): Promise<ReadPiece[]>;
  /** Resolves once the data is what later reads see; with `fua`, once it is durable too. */
  write(offset: number, data: Buffer, fua: boolean): Promise<void>;
  /** Later reads see zeros; `hole` says the space may be given back (TRIM, or WRITE_ZEROES without NO_HOLE). */
  zero(offset: number, length: number, hole: boolean, fua: boolean): Promise<void>;
  /** Every write acknowledged before this call, on any connection, is durable when it resolves. */
  flush(): Promise<void>;
  /** base:allocation extents from `offset`, covering at least one byte and ideally `length`. */
  extents(offset: number, length: number): Promise<Extent[]>;
}

/** A failure the client is told in the protocol's terms; anything else is EIO. */
export class NbdError extends Error {
  constructor(
    readonly errno: Errno,
    message: string,
  ) {
    super(message);
    this.name = 'NbdError';
  }
}

export function errnoOf(err: unknown): Errno {
  if (err instanceof NbdError) return err.errno;
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EFBIG') return Errno.ENOSPC;
  if (code === 'ENOMEM') return Errno.ENOMEM;
  return Errno.EIO;
}

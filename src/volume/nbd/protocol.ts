/**
 * The NBD wire format (NetworkBlockDevice/nbd doc/proto.md): the numbers both ends agree on and
 * the encoders of what the server sends. Big-endian throughout.
 */

export const NBDMAGIC = 0x4e42444d41474943n;
export const IHAVEOPT = 0x49484156454f5054n;
export const OPTION_REPLY_MAGIC = 0x3e889045565a9n;
export const REQUEST_MAGIC = 0x25609513;
const SIMPLE_REPLY_MAGIC = 0x67446698;
const STRUCTURED_REPLY_MAGIC = 0x668e33ef;

/** Handshake flags (server) and client flags. */
export const FLAG_FIXED_NEWSTYLE = 1 << 0;
export const FLAG_NO_ZEROES = 1 << 1;
export const FLAG_C_FIXED_NEWSTYLE = 1 << 0;
export const FLAG_C_NO_ZEROES = 1 << 1;

export const Opt = {
  EXPORT_NAME: 1,
  ABORT: 2,
  LIST: 3,
  STARTTLS: 5,
  INFO: 6,
  GO: 7,
  STRUCTURED_REPLY: 8,
  LIST_META_CONTEXT: 9,
  SET_META_CONTEXT: 10,
} as const;

const ERR = 2 ** 31;
export const Rep = {
  ACK: 1,
  SERVER: 2,
  INFO: 3,
  META_CONTEXT: 4,
  ERR_UNSUP: ERR + 1,
  ERR_POLICY: ERR + 2,
  ERR_INVALID: ERR + 3,
  ERR_UNKNOWN: ERR + 6,
  ERR_TOO_BIG: ERR + 9,
} as const;

export const Info = { EXPORT: 0, NAME: 1, DESCRIPTION: 2, BLOCK_SIZE: 3 } as const;

/** Transmission flags. */
export const TFlag = {
  HAS_FLAGS: 1 << 0,
  READ_ONLY: 1 << 1,
  SEND_FLUSH: 1 << 2,
  SEND_FUA: 1 << 3,
  SEND_TRIM: 1 << 5,
  SEND_WRITE_ZEROES: 1 << 6,
  SEND_DF: 1 << 7,
  CAN_MULTI_CONN: 1 << 8,
  SEND_FAST_ZERO: 1 << 11,
} as const;

export const Cmd = { READ: 0, WRITE: 1, DISC: 2, FLUSH: 3, TRIM: 4, CACHE: 5, WRITE_ZEROES: 6, BLOCK_STATUS: 7 } as const;
export const CmdFlag = { FUA: 1 << 0, NO_HOLE: 1 << 1, DF: 1 << 2, REQ_ONE: 1 << 3, FAST_ZERO: 1 << 4 } as const;

const ReplyType = { NONE: 0, OFFSET_DATA: 1, OFFSET_HOLE: 2, BLOCK_STATUS: 5, ERROR: 2 ** 15 + 1 } as const;
const REPLY_FLAG_DONE = 1;

/** base:allocation's status bits. */
export const STATE_HOLE = 1 << 0;
export const STATE_ZERO = 1 << 1;
export const BASE_ALLOCATION = 'base:allocation';

/** The error numbers the protocol carries (its own, not the host's). */
export const Errno = { EPERM: 1, EIO: 5, ENOMEM: 12, EINVAL: 22, ENOSPC: 28, EOVERFLOW: 75, ENOTSUP: 95, ESHUTDOWN: 108 } as const;
export type Errno = (typeof Errno)[keyof typeof Errno];

/** The longest string (export name, query) the protocol allows. */
export const MAX_STRING = 4096;

export function greeting(): Buffer {
  const b = Buffer.alloc(18);
  b.writeBigUInt64BE(NBDMAGIC, 0);
  b.writeBigUInt64BE(IHAVEOPT, 8);
  b.writeUInt16BE(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES, 16);
  return b;
}

export function optionReply(option: number, type: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(20 + data.length);
  b.writeBigUInt64BE(OPTION_REPLY_MAGIC, 0);
  b.writeUInt32BE(option, 8);
  b.writeUInt32BE(type, 12);
  b.writeUInt32BE(data.length, 16);
  data.copy(b, 20);
  return b;
}

export function infoExport(size: number, flags: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(Info.EXPORT, 0);
  b.writeBigUInt64BE(BigInt(size), 2);
  b.writeUInt16BE(flags, 10);
  return b;
}

export function infoBlockSize(min: number, preferred: number, max: number): Buffer {
  const b = Buffer.alloc(14);
  b.writeUInt16BE(Info.BLOCK_SIZE, 0);
  b.writeUInt32BE(min, 2);
  b.writeUInt32BE(preferred, 6);
  b.writeUInt32BE(max, 10);
  return b;
}

export function infoString(type: number, text: string): Buffer {
  const s = Buffer.from(text);
  const b = Buffer.alloc(2 + s.length);
  b.writeUInt16BE(type, 0);
  s.copy(b, 2);
  return b;
}

/** NBD_REP_SERVER's data: a name and its description. */
export function serverEntry(name: string, description: string): Buffer {
  const n = Buffer.from(name);
  const b = Buffer.alloc(4 + n.length);
  b.writeUInt32BE(n.length, 0);
  n.copy(b, 4);
  return Buffer.concat([b, Buffer.from(description)]);
}

export function metaContext(id: number, name: string): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(id, 0);
  return Buffer.concat([b, Buffer.from(name)]);
}

/** The reply to NBD_OPT_EXPORT_NAME, which has no option reply header. */
export function exportNameReply(size: number, flags: number, noZeroes: boolean): Buffer {
  const b = Buffer.alloc(noZeroes ? 10 : 134);
  b.writeBigUInt64BE(BigInt(size), 0);
  b.writeUInt16BE(flags, 8);
  return b;
}

export function simpleReply(cookie: Buffer, error: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(SIMPLE_REPLY_MAGIC, 0);
  b.writeUInt32BE(error, 4);
  cookie.copy(b, 8);
  return b;
}

function chunkHeader(cookie: Buffer, type: number, done: boolean, length: number): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt32BE(STRUCTURED_REPLY_MAGIC, 0);
  b.writeUInt16BE(done ? REPLY_FLAG_DONE : 0, 4);
  b.writeUInt16BE(type, 6);
  cookie.copy(b, 8);
  b.writeUInt32BE(length, 16);
  return b;
}

/** The header and offset of an OFFSET_DATA chunk; its `length` bytes of data follow. */
export function offsetDataHeader(cookie: Buffer, offset: number, length: number, done: boolean): Buffer {
  const b = Buffer.alloc(28);
  chunkHeader(cookie, ReplyType.OFFSET_DATA, done, 8 + length).copy(b);
  b.writeBigUInt64BE(BigInt(offset), 20);
  return b;
}

export function offsetHole(cookie: Buffer, offset: number, length: number, done: boolean): Buffer {
  const b = Buffer.alloc(32);
  chunkHeader(cookie, ReplyType.OFFSET_HOLE, done, 12).copy(b);
  b.writeBigUInt64BE(BigInt(offset), 20);
  b.writeUInt32BE(length, 28);
  return b;
}

export function doneChunk(cookie: Buffer): Buffer {
  return chunkHeader(cookie, ReplyType.NONE, true, 0);
}

export function errorChunk(cookie: Buffer, error: number, message: string): Buffer {
  const text = Buffer.from(message.slice(0, 1024));
  const b = Buffer.alloc(26 + text.length);
  chunkHeader(cookie, ReplyType.ERROR, true, 6 + text.length).copy(b);
  b.writeUInt32BE(error, 20);
  b.writeUInt16BE(text.length, 24);
  text.copy(b, 26);
  return b;
}

export interface Extent {
  length: number;
  flags: number;
}

export function blockStatusChunk(cookie: Buffer, contextId: number, extents: readonly Extent[]): Buffer {
  const b = Buffer.alloc(24 + 8 * extents.length);
  chunkHeader(cookie, ReplyType.BLOCK_STATUS, true, 4 + 8 * extents.length).copy(b);
  b.writeUInt32BE(contextId, 20);
  extents.forEach((e, n) => {
    b.writeUInt32BE(e.length, 24 + 8 * n);
    b.writeUInt32BE(e.flags, 28 + 8 * n);
  });
  return b;
}

import type { Socket } from 'node:net';
import type { BlockExport } from './export.js';
import {
  BASE_ALLOCATION,
  exportNameReply,
  FLAG_C_FIXED_NEWSTYLE,
  FLAG_C_NO_ZEROES,
  greeting,
  IHAVEOPT,
  Info,
  infoBlockSize,
  infoExport,
  infoString,
  MAX_STRING,
  metaContext,
  Opt,
  optionReply,
  Rep,
  serverEntry,
  TFlag,
} from './protocol.js';
import type { SocketReader } from './socket-reader.js';

/** Replies carry at most this much data; larger writes are refused (the protocol's default limit). */
export const MAX_PAYLOAD = 32 * 1024 * 1024;
/** No option a client sends needs more (a name, a few queries): more is not an NBD client. */
const MAX_OPTION_DATA = 64 * 1024;
/** The ID the base:allocation context is given (the only one there is). */
export const ALLOCATION_CONTEXT = 1;

export interface Negotiated {
  export: BlockExport;
  structured: boolean;
  /** base:allocation was selected for this export: BLOCK_STATUS may be asked. */
  allocation: boolean;
}

/** The exports one server offers; the empty name is the first (the default export). */
export class ExportTable {
  constructor(readonly exports: readonly BlockExport[]) {}

  find(name: string): BlockExport | undefined {
    return name === '' ? this.exports[0] : this.exports.find((e) => e.name === name);
  }
}

/** DF ("one chunk") only means something once structured replies are agreed, and may only be offered then. */
export function transmissionFlags(e: BlockExport, structured: boolean): number {
  const flags = TFlag.HAS_FLAGS | TFlag.SEND_FLUSH | TFlag.SEND_FUA | TFlag.CAN_MULTI_CONN | (structured ? TFlag.SEND_DF : 0);
  // Zeroing is a map change, never a write of zeros: always fast.
  return e.readOnly ? flags | TFlag.READ_ONLY : flags | TFlag.SEND_TRIM | TFlag.SEND_WRITE_ZEROES | TFlag.SEND_FAST_ZERO;
}

/** The option data could not be parsed: answered with NBD_REP_ERR_INVALID. */
class InvalidOption extends Error {}

/** Reads option data: strings and counts bounded by what was sent. */
class OptionData {
  private at = 0;
  constructor(private readonly data: Buffer) {}

  u16(): number {
    this.need(2);
    return this.data.readUInt16BE((this.at += 2) - 2);
  }

  u32(): number {
    this.need(4);
    return this.data.readUInt32BE((this.at += 4) - 4);
  }

  string(): string {
    const n = this.u32();
    if (n > MAX_STRING) throw new InvalidOption('string too long');
    this.need(n);
    return this.data.toString('utf8', this.at, (this.at += n));
  }

  end(): void {
    if (this.at !== this.data.length) throw new InvalidOption('trailing data');
  }

  private need(n: number): void {
    if (this.at + n > this.data.length) throw new InvalidOption('truncated');
  }
}

/**
 * The fixed newstyle handshake, server side: greeting, client flags, then options until the
 * client picks an export (GO or EXPORT_NAME) or leaves. Undefined when it left or broke the
 * protocol (then the socket is closed here).
 */
export async function negotiate(reader: SocketReader, socket: Socket, table: ExportTable): Promise<Negotiated | undefined> {
  socket.write(greeting());
  const clientFlags = (await reader.read(4)).readUInt32BE(0);
  if (clientFlags & ~(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES)) return hangUp(socket);
  const noZeroes = (clientFlags & FLAG_C_NO_ZEROES) !== 0;
  let structured = false;
  let allocationFor: string | undefined;
  for (;;) {
    const header = await reader.read(16);
    if (header.readBigUInt64BE(0) !== IHAVEOPT) return hangUp(socket);
    const option = header.readUInt32BE(8);
    const length = header.readUInt32BE(12);
    if (length > MAX_OPTION_DATA) return hangUp(socket);
    const data = await reader.read(length);
    const reply = (type: number, payload?: Buffer) => socket.write(optionReply(option, type, payload));
    try {
      switch (option) {
        case Opt.EXPORT_NAME: {
          const e = table.find(data.toString('utf8'));
          if (!e) return hangUp(socket);
          socket.write(exportNameReply(e.size, transmissionFlags(e, structured), noZeroes));
          return { export: e, structured, allocation: allocationFor === e.name };
        }
        case Opt.ABORT:
          reply(Rep.ACK);
          return hangUp(socket);
        case Opt.LIST:
          if (length) throw new InvalidOption('LIST takes no data');
          for (const e of table.exports) reply(Rep.SERVER, serverEntry(e.name, e.description));
          reply(Rep.ACK);
          break;
        case Opt.INFO:
        case Opt.GO: {
          const d = new OptionData(data);
          const name = d.string();
          const requests = Array.from({ length: d.u16() }, () => d.u16());
          d.end();
          const e = table.find(name);
          if (!e) {
            reply(Rep.ERR_UNKNOWN, Buffer.from(`no export named "${name}"`));
            break;
          }
          reply(Rep.INFO, infoExport(e.size, transmissionFlags(e, structured)));
          reply(Rep.INFO, infoBlockSize(1, e.preferredBlock, MAX_PAYLOAD));
          if (requests.includes(Info.NAME)) reply(Rep.INFO, infoString(Info.NAME, e.name));
          if (requests.includes(Info.DESCRIPTION)) reply(Rep.INFO, infoString(Info.DESCRIPTION, e.description));
          reply(Rep.ACK);
          if (option === Opt.GO) return { export: e, structured, allocation: allocationFor === e.name };
          break;
        }
        case Opt.STRUCTURED_REPLY:
          if (length) throw new InvalidOption('STRUCTURED_REPLY takes no data');
          structured = true;
          reply(Rep.ACK);
          break;
        case Opt.LIST_META_CONTEXT:
        case Opt.SET_META_CONTEXT: {
          if (!structured) throw new InvalidOption('meta contexts need structured replies');
          const d = new OptionData(data);
          const name = d.string();
          const queries = Array.from({ length: d.u32() }, () => d.string());
          d.end();
          const e = table.find(name);
          const set = option === Opt.SET_META_CONTEXT;
          if (set) allocationFor = undefined;
          if (!e) {
            reply(Rep.ERR_UNKNOWN, Buffer.from(`no export named "${name}"`));
            break;
          }
          const wanted = set ? queries.includes(BASE_ALLOCATION) : queries.length === 0 || queries.some((q) => q === 'base:' || q === BASE_ALLOCATION);
          if (wanted) reply(Rep.META_CONTEXT, metaContext(set ? ALLOCATION_CONTEXT : 0, BASE_ALLOCATION));
          if (wanted && set) allocationFor = e.name;
          reply(Rep.ACK);
          break;
        }
        default:
          // STARTTLS included: there is no TLS here, the socket is local or the user's tunnel.
          reply(Rep.ERR_UNSUP);
      }
    } catch (err) {
      if (!(err instanceof InvalidOption)) throw err;
      if (option === Opt.EXPORT_NAME) return hangUp(socket);
      reply(Rep.ERR_INVALID, Buffer.from(err.message));
    }
  }
}

function hangUp(socket: Socket): undefined {
  socket.end();
  return undefined;
}

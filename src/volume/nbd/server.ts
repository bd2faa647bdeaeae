import { chmod, lstat, unlink } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { ScrateError } from '../../errors.js';
import type { BlockExport } from './export.js';
import { ExportTable, negotiate } from './handshake.js';
import { SocketReader } from './socket-reader.js';
import { Transmission } from './transmission.js';

export type Listen = { socket: string } | { host: string; port: number };

/**
 * An NBD server of fixed exports: each connection negotiates, then is served on its own
 * (several at once, as multi-conn clients such as nbdcopy open). `close` takes no new
 * connection, answers what each has under way and ends them.
 */
export class NbdServer {
  private readonly table: ExportTable;
  private readonly server: Server;
  /** Every connection, with its transmission once the handshake is over. */
  private readonly connections = new Map<Socket, Transmission | undefined>();
  private readonly done = new Set<Promise<void>>();

  constructor(
    exports: readonly BlockExport[],
    private readonly onError: (err: unknown) => void,
  ) {
    this.table = new ExportTable(exports);
    this.server = createServer({ noDelay: true }, (socket) => this.accept(socket));
  }

  async listen(where: Listen): Promise<void> {
    if ('socket' in where) await removeStaleSocket(where.socket);
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      const ready = () => {
        this.server.off('error', reject);
        resolve();
      };
      if ('socket' in where) this.server.listen(where.socket, ready);
      else this.server.listen(where.port, where.host, ready);
    });
    // Whoever can connect can read and write the disk.
    if ('socket' in where) await chmod(where.socket, 0o600);
  }

  /** The TCP port listened on (for port 0). */
  get port(): number {
    const address = this.server.address();
    return typeof address === 'object' && address ? address.port : 0;
  }

  async close(): Promise<void> {
    const closed = new Promise((resolve) => this.server.close(resolve));
    // Connections still in the handshake have nothing under way.
    for (const [socket, t] of this.connections) t ? void t.stop() : socket.destroy();
    await Promise.allSettled([...this.done]);
    await closed;
  }

  private accept(socket: Socket): void {
    this.connections.set(socket, undefined);
    socket.on('error', () => {});
    const done = this.serve(socket)
      .catch((err) => this.onError(err))
      .finally(() => {
        this.connections.delete(socket);
        this.done.delete(done);
        socket.destroy();
      });
    this.done.add(done);
  }

  private async serve(socket: Socket): Promise<void> {
    const reader = new SocketReader(socket);
    const session = await negotiate(reader, socket, this.table).catch(() => undefined);
    if (!session) return;
    const t = new Transmission(reader, socket, session, this.onError);
    this.connections.set(socket, t);
    await t.run();
  }
}

/** A socket file left by a server that died is replaced; one something still answers on is not. */
async function removeStaleSocket(path: string): Promise<void> {
  const st = await lstat(path).catch(() => undefined);
  if (!st) return;
  if (!st.isSocket()) throw new ScrateError(`${path} exists and is not a socket`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) throw new ScrateError(`${path} is in use by another server`);
  await unlink(path);
}

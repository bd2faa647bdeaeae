import { createHmac } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { ScrateError } from '../errors.js';

/** A request over a serve's control socket, one JSON line each way. */
export interface ControlRequest {
  token: string;
  op: 'commit';
  tags: string[];
}
export type ControlReply = { ok: true; snapshot: string } | { ok: false; error: string };

/**
 * Where a running serve listens for `volume commit`: an abstract unix socket (no path to
 * create, none left behind by kill -9, no length limit from the cache directory's path),
 * named from the volume's cache key. Anyone on the host may see the name, so a request
 * carries a token only a holder of the key can make.
 */
export function controlAddress(cacheKey: Buffer): { path: string; token: string } {
  const mac = (what: string) => createHmac('sha256', cacheKey).update(what).digest('hex');
  return { path: `\0scrate-volume-${mac('control socket').slice(0, 32)}`, token: mac('control token') };
}

/** Listens for commits; `commit` is what the serve does for one. */
export async function listenControl(cacheKey: Buffer, commit: (tags: string[]) => Promise<string>): Promise<Server> {
  const { path, token } = controlAddress(cacheKey);
  const server = createServer((socket) => {
    let line = '';
    let answered = false;
    socket.setEncoding('utf8');
    socket.on('error', () => undefined);
    socket.on('data', (chunk: string) => {
      if (answered) return;
      line += chunk;
      const end = line.indexOf('\n');
      if (end >= 0) {
        answered = true;
        void answer(socket, line.slice(0, end));
      }
      else if (line.length > 64 * 1024) socket.destroy();
    });
  });
  async function answer(socket: Socket, text: string): Promise<void> {
    let reply: ControlReply;
    try {
      const req = JSON.parse(text) as ControlRequest;
      if (req.token !== token || req.op !== 'commit' || !Array.isArray(req.tags) || !req.tags.every((t) => typeof t === 'string')) throw new Error('bad request');
      reply = { ok: true, snapshot: await commit(req.tags) };
    } catch (err) {
      reply = { ok: false, error: (err as Error).message };
    }
    socket.end(JSON.stringify(reply) + '\n');
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(err.code === 'EADDRINUSE' ? new ScrateError('this volume is already served on this host') : err));
    server.listen(path, resolve);
  });
  return server;
}

/** Asks the serve of this volume on this host for a commit; undefined when none listens. */
export async function requestCommit(cacheKey: Buffer, tags: string[]): Promise<string | undefined> {
  const { path, token } = controlAddress(cacheKey);
  const socket = connect(path);
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ECONNREFUSED' || code === 'ENOENT') return undefined;
    throw err;
  }
  socket.setEncoding('utf8');
  socket.write(JSON.stringify({ token, op: 'commit', tags } satisfies ControlRequest) + '\n');
  let text = '';
  for await (const chunk of socket) text += chunk as string;
  let reply: ControlReply;
  try {
    reply = JSON.parse(text) as ControlReply;
  } catch {
    throw new ScrateError('the serving process ended before the commit was made');
  }
  if (!reply.ok) throw new ScrateError(`commit failed: ${reply.error}`);
  return reply.snapshot;
}

import type { BlockExport } from './export.js';
import { NbdServer, type Listen } from './server.js';

export function describeListen(where: Listen): string {
  return 'socket' in where ? `unix socket ${where.socket}` : `${where.host}:${where.port}`;
}

/** Serves one export over NBD until `signal` aborts; the socket is gone when it resolves. */
export async function serveNbd(exported: BlockExport, where: Listen, signal: AbortSignal, onInfo: (m: string) => void, onError: (err: unknown) => void): Promise<void> {
  const server = new NbdServer([exported], onError);
  await server.listen(where);
  onInfo(`serving ${exported.description} over NBD on ${describeListen(where)} (export name "${exported.name}")`);
  try {
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
  } finally {
    await server.close();
  }
}

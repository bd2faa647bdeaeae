import { NbdServer } from '../../src/volume/nbd/server.js';
import { MemoryExport } from './memory-export.js';

/**
 * `node memory-nbd-server.js SOCKET NAME SIZE`: a memory export served from its own process,
 * for tests whose side of the I/O is synchronous (a kernel filesystem over nbdfuse over this
 * server would deadlock with the server in the test's own event loop). Prints "ready", and on
 * SIGTERM the number of flushes it saw.
 */
const [socket, name, size] = process.argv.slice(2);
const disk = new MemoryExport(name!, Number(size));
const server = new NbdServer([disk], (err) => console.error(String(err)));
await server.listen({ socket: socket! });
console.log('ready');
process.on('SIGTERM', () => {
  void server.close().then(() => {
    console.log(`flushes ${disk.flushes}`);
    process.exit(0);
  });
});

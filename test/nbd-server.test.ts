import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { connect, type Socket } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { NbdServer } from '../src/volume/nbd/server.js';
import { isMounted } from './helpers/fuse-mount.js';
import { MemoryExport } from './helpers/memory-export.js';
import { loopDevicesUnavailable } from './helpers/disk.js';
import { scratch } from './helpers/repo.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;

const CLIENTS = ['nbdinfo', 'nbdcopy', 'nbdfuse', 'qemu-img'];
const missing = CLIENTS.filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
// CI installs the clients (libnbd-bin, qemu-utils): there a missing one is a failure, not a skip.
if (missing.length && process.env['CI']) throw new Error(`NBD clients missing: ${missing.join(', ')}`);
const skip = missing.length ? `NBD clients missing: ${missing.join(', ')}` : false;

describe('NBD server against real clients', { skip }, () => {
  const { dir, cleanup } = scratch('nbd');
  const sock = path.join(dir, 'nbd.sock');
  const errors: unknown[] = [];
  const vol = new MemoryExport('vol', 256 * MiB);
  const big = new MemoryExport('huge', 256 * 2 ** 40);
  const frozen = new MemoryExport('frozen', 16 * MiB, true);
  const server = new NbdServer([vol, big, frozen], (err) => errors.push(err));
  const uri = (name: string) => `nbd+unix:///${name}?socket=${sock}`;

  before(async () => {
    await server.listen({ socket: sock });
    frozen.blocks.set(3, Buffer.alloc(64 * 1024, 7));
  });
  after(async () => {
    await server.close();
    cleanup();
  });

  test('nbdinfo lists the exports and reports sizes, flags and the preferred block size', async () => {
    assert.equal(fs.statSync(sock).mode & 0o777, 0o600, 'only its owner may connect');
    const list = (await run('nbdinfo', ['--list', '--json', `nbd+unix://?socket=${sock}`])).stdout;
    const exports = JSON.parse(list).exports as { 'export-name': string; description: string; 'export-size': number }[];
    assert.deepEqual(
      exports.map((e) => [e['export-name'], e.description, e['export-size']]),
      [vol, big, frozen].map((e) => [e.name, e.description, e.size]),
    );
    const info = JSON.parse((await run('nbdinfo', ['--json', uri('vol')])).stdout).exports[0];
    assert.equal(info['export-size'], vol.size);
    assert.equal(info.is_read_only, false);
    for (const can of ['can_flush', 'can_fua', 'can_trim', 'can_zero', 'can_fast_zero', 'can_multi_conn', 'can_df']) assert.equal(info[can], true, can);
    assert.equal(info.block_size_preferred, vol.preferredBlock);
    assert.deepEqual(info.contexts, ['base:allocation']);
    const ro = JSON.parse((await run('nbdinfo', ['--json', uri('frozen')])).stdout).exports[0];
    assert.equal(ro.is_read_only, true);
    // The empty name is the default export.
    assert.equal(JSON.parse((await run('nbdinfo', ['--json', `nbd+unix://?socket=${sock}`])).stdout).exports[0]['export-size'], vol.size);
  });

  test('nbdcopy and qemu-img round-trip a random sparse image bit-exact, and the copy stays sparse', async () => {
    const image = path.join(dir, 'in.img');
    const back = path.join(dir, 'back.img');
    // Data in three places with holes between: 0–4 MiB, 100 MiB + 3 bytes (unaligned) and the last MiB.
    fs.writeFileSync(image, '');
    fs.truncateSync(image, vol.size);
    const fd = fs.openSync(image, 'r+');
    const pieces: [number, Buffer][] = [
      [0, randomBytes(4 * MiB)],
      [100 * MiB + 3, randomBytes(300_000)],
      [vol.size - MiB, randomBytes(MiB)],
    ];
    for (const [at, data] of pieces) fs.writeSync(fd, data, 0, data.length, at);
    fs.closeSync(fd);
    await run('nbdcopy', [image, uri('vol')]);
    // Unwritten ranges are not stored: 4 MiB + 5 blocks (300,000 bytes from an odd offset) + 1 MiB.
    assert.equal(vol.blocks.size, 64 + 5 + 16);
    await run('nbdcopy', [uri('vol'), back]);
    assert.ok(fs.readFileSync(back).equals(fs.readFileSync(image)));
    await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', image, uri('vol')]);
    fs.rmSync(back);
    await run('qemu-img', ['convert', '-O', 'raw', uri('vol'), back]);
    assert.ok(fs.readFileSync(back).equals(fs.readFileSync(image)));
    // base:allocation told qemu-img where the holes are: its output is sparse too.
    assert.ok(fs.statSync(back).blocks * 512 < 8 * MiB, `${fs.statSync(back).blocks * 512} bytes allocated`);
    const map = JSON.parse((await run('nbdinfo', ['--map', '--json', uri('vol')])).stdout) as { offset: number; length: number; type: number }[];
    const data = map.filter((e) => (e.type & 1) === 0);
    assert.deepEqual(
      data.map((e) => [e.offset, e.length]),
      [
        [0, 4 * MiB],
        [100 * MiB, 5 * 64 * 1024],
        [vol.size - MiB, MiB],
      ],
    );
  });

  test('WRITE_ZEROES and TRIM free whole blocks, zero parts of others, and FUA is accepted', async () => {
    const before = vol.blocks.size;
    // 1 MiB of zeroes that may unmap, 1 MiB trimmed, then 1,000 bytes zeroed inside a block with FUA.
    await run('qemu-io', ['-f', 'raw', '-c', `write -z -u 0 ${MiB}`, '-c', `discard ${MiB} ${MiB}`, '-c', `write -z -f ${3 * MiB + 10} 1000`, uri('vol')]);
    assert.equal(vol.blocks.size, before - 32);
    const out = (await run('qemu-io', ['-f', 'raw', '-r', '-c', `read -P 0 0 ${2 * MiB}`, '-c', `read -P 0 ${3 * MiB + 10} 1000`, uri('vol')])).stdout;
    assert.equal(out.match(/read \d+\/\d+ bytes/g)?.length, 2, out);
    const block = (await vol.read(3 * MiB, 64 * 1024))[0] as Buffer;
    assert.ok(block.subarray(10, 1010).every((x) => x === 0));
    assert.ok(block.subarray(1010).some((x) => x !== 0), 'the rest of the block is kept');
  });

  test('a 256 TiB export maps as one hole and reads zeros at its end', async () => {
    const map = JSON.parse((await run('nbdinfo', ['--map', '--json', uri('huge')])).stdout) as { offset: number; length: number; type: number }[];
    assert.equal(map.reduce((n, e) => n + e.length, 0), big.size);
    assert.ok(map.every((e) => e.type === 3));
    // The last MiB, past 2^32 and 2^40: zeros, read and checked by qemu-io.
    const out = (await run('qemu-io', ['-f', 'raw', '-r', '-c', `read -P 0 ${big.size - MiB} ${MiB}`, uri('huge')])).stdout;
    assert.match(out, /read 1048576\/1048576 bytes/);
  });

  test('a read-only export refuses writes with EPERM and still serves reads', async () => {
    const image = path.join(dir, 'ro.img');
    fs.writeFileSync(image, randomBytes(MiB));
    await assert.rejects(run('nbdcopy', [image, uri('frozen')]), /Operation not permitted|read-only|EPERM/i);
    const out = path.join(dir, 'ro-out.img');
    await run('nbdcopy', [uri('frozen'), out]);
    const got = fs.readFileSync(out);
    assert.ok(got.subarray(3 * 64 * 1024, 4 * 64 * 1024).every((x) => x === 7));
    assert.ok(got.subarray(0, 3 * 64 * 1024).every((x) => x === 0));
  });

  test('protocol: legacy EXPORT_NAME, unknown exports, writes past the end, garbage', async () => {
    const raw = await RawClient.open(sock);
    // Handshake: NBDMAGIC, IHAVEOPT, flags FIXED_NEWSTYLE|NO_ZEROES.
    const hello = await raw.read(18);
    assert.equal(hello.subarray(0, 16).toString('latin1'), 'NBDMAGICIHAVEOPT');
    assert.equal(hello.readUInt16BE(16), 3);
    raw.write(u32(3));
    // An unknown option is refused (ERR_UNSUP), the session goes on.
    raw.write(option(99, Buffer.alloc(0)));
    const unsup = await raw.read(20);
    assert.equal(unsup.readUInt32BE(12), 2 ** 31 + 1);
    raw.write(option(1, Buffer.from('vol')));
    const reply = await raw.read(10);
    assert.equal(Number(reply.readBigUInt64BE(0)), vol.size);
    // A write past the end: ENOSPC (28), payload consumed, connection still in step.
    raw.write(request(1, 0x1111n, vol.size - 2, 4), Buffer.from('abcd'));
    const nospc = await raw.read(16);
    assert.equal(nospc.readUInt32BE(4), 28);
    raw.write(request(0, 0x2222n, 0, 16));
    const ok = await raw.read(16 + 16);
    assert.equal(ok.readUInt32BE(4), 0);
    assert.equal(ok.readBigUInt64BE(8), 0x2222n);
    // Garbage instead of a request: the server hangs up.
    raw.write(Buffer.alloc(28, 0xee));
    await raw.closed;
    // EXPORT_NAME of an unknown export also ends the session; the server keeps serving.
    const other = await RawClient.open(sock);
    await other.read(18);
    other.write(u32(1), option(1, Buffer.from('nope')));
    await other.closed;
    const info = JSON.parse((await run('nbdinfo', ['--json', uri('vol')])).stdout).exports[0];
    assert.equal(info['export-size'], vol.size);
    await assert.rejects(run('nbdinfo', [uri('nope')]), /nope|unknown|not found|No such/i);
    assert.deepEqual(errors, []);
  });
});

/**
 * A memory export served from a process of its own (args: SOCKET NAME SIZE), for a test whose
 * side of the I/O is synchronous: a kernel filesystem over nbdfuse over a server in the test's
 * own event loop would deadlock. Prints "ready", and on SIGTERM the number of flushes it saw.
 * Inline, not a file under test/: every file there is run as a test.
 */
const SERVE_IN_CHILD = `
const { NbdServer } = await import(${JSON.stringify(new URL('../src/volume/nbd/server.js', import.meta.url).href)});
const { MemoryExport } = await import(${JSON.stringify(new URL('./helpers/memory-export.js', import.meta.url).href)});
const [socket, name, size] = process.argv.slice(1);
const disk = new MemoryExport(name, Number(size));
const server = new NbdServer([disk], (err) => console.error(String(err)));
await server.listen({ socket });
console.log('ready');
process.on('SIGTERM', () => void server.close().then(() => { console.log('flushes ' + disk.flushes); process.exit(0); }));
`;

const fsUnavailable = loopDevicesUnavailable();
if (fsUnavailable && process.env['CI']) throw new Error(`NBD filesystem test cannot run: ${fsUnavailable}`);

describe('an ext4 filesystem on the export through nbdfuse and a loop device', { skip: skip || fsUnavailable || false }, () => {
  const { dir, cleanup } = scratch('nbdfs');
  const sock = path.join(dir, 'nbd.sock');
  const fuseDir = path.join(dir, 'fuse');
  const mnt = path.join(dir, 'mnt');
  const size = 512 * MiB;
  let server: ChildProcess | undefined;
  let nbdfuse: ChildProcess | undefined;
  let loop: string | undefined;

  before(async () => {
    fs.mkdirSync(fuseDir);
    fs.mkdirSync(mnt);
    server = spawn(process.execPath, ['--input-type=module', '-e', SERVE_IN_CHILD, sock, 'disk', String(size)], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      server!.stdout!.once('data', () => resolve());
      server!.once('exit', () => reject(new Error('the server ended')));
    });
  });
  after(() => {
    if (isMounted(mnt)) spawnSync('umount', ['-l', mnt]);
    if (loop) spawnSync('losetup', ['-d', loop]);
    if (isMounted(fuseDir)) spawnSync('fusermount', ['-u', '-z', fuseDir]);
    nbdfuse?.kill('SIGKILL');
    server?.kill('SIGKILL');
    cleanup();
  });

  test('mkfs, write a tree, sync, unmount, fsck clean, contents read back, flushes reach the server', async () => {
    nbdfuse = spawn('nbdfuse', [fuseDir, '--unix', sock], { stdio: 'ignore' });
    const file = path.join(fuseDir, 'nbd');
    for (let i = 0; i < 200 && !isMounted(fuseDir); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(fs.statSync(file).size, size);
    execFileSync('mkfs.ext4', ['-q', '-F', '-E', 'nodiscard', file]);
    loop = execFileSync('losetup', ['--find', '--show', file]).toString().trim();
    execFileSync('mount', [loop, mnt]);
    const content = new Map<string, Buffer>();
    for (let i = 0; i < 40; i++) {
      const data = randomBytes(1000 + i * 37_000);
      content.set(`f${i}`, data);
      fs.writeFileSync(path.join(mnt, `f${i}`), data);
    }
    execFileSync('umount', [mnt]);
    execFileSync('e2fsck', ['-f', '-n', loop], { stdio: 'pipe' });
    // Dropped from the page cache with the loop device: the reads below come from the server.
    execFileSync('losetup', ['-d', loop]);
    loop = execFileSync('losetup', ['--find', '--show', file]).toString().trim();
    execFileSync('mount', ['-o', 'ro', loop, mnt]);
    for (const [name, data] of content) assert.ok(fs.readFileSync(path.join(mnt, name)).equals(data), name);
    execFileSync('umount', [mnt]);
    execFileSync('losetup', ['-d', loop]);
    loop = undefined;
    execFileSync('fusermount', ['-u', fuseDir]);
    const said = new Promise<string>((resolve) => server!.stdout!.on('data', (d: Buffer) => resolve(d.toString())));
    server!.kill('SIGTERM');
    const flushes = Number(/flushes (\d+)/.exec(await said)?.[1]);
    assert.ok(flushes > 0, 'the filesystem flushed through the export');
  });
});

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function option(opt: number, data: Buffer): Buffer {
  const b = Buffer.alloc(16);
  b.write('IHAVEOPT', 0, 'latin1');
  b.writeUInt32BE(opt, 8);
  b.writeUInt32BE(data.length, 12);
  return Buffer.concat([b, data]);
}

function request(type: number, cookie: bigint, offset: number, length: number): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt32BE(0x25609513, 0);
  b.writeUInt16BE(type, 6);
  b.writeBigUInt64BE(cookie, 8);
  b.writeBigUInt64BE(BigInt(offset), 16);
  b.writeUInt32BE(length, 24);
  return b;
}

/** A hand-driven client for what real clients never send. */
class RawClient {
  private data = Buffer.alloc(0);
  private wake?: () => void;
  readonly closed: Promise<void>;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.data = Buffer.concat([this.data, d]);
      this.wake?.();
    });
    this.closed = new Promise((resolve) => socket.on('close', () => resolve()));
    socket.on('error', () => {});
  }

  static open(path: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = connect(path, () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  write(...buffers: Buffer[]): void {
    for (const b of buffers) this.socket.write(b);
  }

  async read(n: number): Promise<Buffer> {
    while (this.data.length < n) {
      if (this.socket.destroyed) throw new Error('closed by the server');
      await Promise.race([new Promise<void>((resolve) => (this.wake = resolve)), this.closed]);
    }
    const out = this.data.subarray(0, n);
    this.data = this.data.subarray(n);
    return out;
  }
}

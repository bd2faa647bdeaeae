import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { loopDevicesUnavailable } from './helpers/disk.js';
import { eventually, fuseUnavailable, isMounted } from './helpers/fuse-mount.js';
import { scratch } from './helpers/repo.js';

const run = promisify(execFile);
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
/** Past 2^32, so offsets that a 32-bit field would wrap are exercised. */
const SIZE = 6 * GiB;
const BLOCK = 64 * KiB;
/** The export fails reads of this block (an unexpected error, as a lost connection would be). */
const POISON = 1.5 * GiB;

const TOOLS = ['fstrim', 'fallocate', 'truncate', 'e2fsck', 'fusermount'];
const missingTool = TOOLS.find((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
const unavailable = fuseUnavailable() ?? loopDevicesUnavailable() ?? (missingTool ? `${missingTool} is not installed` : null);
// CI runs as root with FUSE, loop devices and the tools: there a missing one is a failure, not a skip.
if (unavailable && process.env['CI']) throw new Error(`the FUSE image test cannot run: ${unavailable}`);

/**
 * The memory export served as an image from a process of its own (args: DIR NAME SIZE [ro]): a
 * kernel filesystem on a loop device over a FUSE server in the test's own event loop would
 * deadlock on sync. Reads of the block at POISON fail. Prints "ready FILE"; on SIGUSR2 a line of the export's state; on its end
 * "ended STATE" (unmounted from outside) or "stopped STATE" (SIGTERM). Inline, not a file under
 * test/: every file there is run as a test.
 */
const SERVE_IN_CHILD = `
const { serveImage } = await import(${JSON.stringify(new URL('../src/volume/fuse-image.js', import.meta.url).href)});
const { MemoryExport } = await import(${JSON.stringify(new URL('./helpers/memory-export.js', import.meta.url).href)});
const [dir, name, size, ro] = process.argv.slice(1);
const disk = new MemoryExport(name, Number(size), ro === 'ro');
const read = disk.read.bind(disk);
disk.read = (offset, length) => (offset < ${POISON + BLOCK} && offset + length > ${POISON} ? Promise.reject(new Error('injected failure')) : read(offset, length));
const stop = new AbortController();
const state = () => JSON.stringify({ flushes: disk.flushes, holes: disk.holes, zeroes: disk.zeroes, allocated: disk.allocatedBytes(), largestWrite: disk.largestWrite });
process.on('SIGUSR2', () => console.log('state ' + state()));
process.on('SIGTERM', () => stop.abort(new Error('stopped')));
serveImage(dir, disk, { signal: stop.signal, onMounted: (file) => console.log('ready ' + file), onWarning: (m) => console.error(m) })
  .then(() => console.log('ended ' + state()), () => console.log('stopped ' + state()));
`;

interface ExportState {
  flushes: number;
  holes: number;
  zeroes: number;
  allocated: number;
  largestWrite: number;
}

/** The child serving an image, and what it says. */
class ImageServer {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  /** The server's lines, each taken once by `line`. */
  private readonly lines: string[] = [];
  private wake?: () => void;
  /** What it wrote to stderr (its warnings). */
  stderr = '';

  constructor(dir: string, name: string, size: number, readOnly = false) {
    this.child = spawn(process.execPath, ['--input-type=module', '-e', SERVE_IN_CHILD, dir, name, String(size), ...(readOnly ? ['ro'] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
    createInterface({ input: this.child.stdout! }).on('line', (l) => {
      this.lines.push(l);
      this.wake?.();
    });
  }

  /** The rest of the next line that starts with `prefix`. */
  async line(prefix: string): Promise<string> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const i = this.lines.findIndex((l) => l.startsWith(`${prefix} `));
      if (i >= 0) return this.lines.splice(i, 1)[0]!.slice(prefix.length + 1);
      assert.ok(Date.now() < deadline, `the server said no "${prefix}" within 30 s (${this.lines.join(' | ')}; stderr: ${this.stderr})`);
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 200);
      });
    }
  }

  async state(): Promise<ExportState> {
    this.child.kill('SIGUSR2');
    return JSON.parse(await this.line('state')) as ExportState;
  }

  /** Leaves nothing behind whatever happened: the mount lazily detached, the process killed. */
  stop(dir: string): void {
    if (isMounted(dir)) spawnSync('fusermount', ['-u', '-z', dir]);
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

describe('a memory export as a FUSE image file, loop-mounted', { skip: unavailable ?? false }, () => {
  const { dir, cleanup } = scratch('volfuse');
  const fuseDir = path.join(dir, 'fuse');
  const mnt = path.join(dir, 'mnt');
  const file = path.join(fuseDir, 'vol1');
  let server: ImageServer | undefined;
  let loop: string | undefined;
  const state = () => server!.state();

  /** Reads through the image past the kernel's page cache (O_DIRECT): what the export holds. */
  function readExport(offset: number, length: number): Buffer {
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_DIRECT);
    try {
      const out = Buffer.alloc(length);
      let got = 0;
      while (got < length) {
        const n = fs.readSync(fd, out, got, length - got, offset + got);
        if (n === 0) break;
        got += n;
      }
      return out.subarray(0, got);
    } finally {
      fs.closeSync(fd);
    }
  }

  const attach = (...args: string[]) => (loop = execFileSync('losetup', [...args, '--find', '--show', file]).toString().trim());
  const detach = () => {
    execFileSync('losetup', ['-d', loop!]);
    loop = undefined;
  };

  before(async () => {
    fs.mkdirSync(fuseDir);
    fs.mkdirSync(mnt);
    server = new ImageServer(fuseDir, 'vol1', SIZE);
    assert.equal(await server.line('ready'), file);
  });

  after(() => {
    if (isMounted(mnt)) spawnSync('umount', ['-l', mnt]);
    if (loop) spawnSync('losetup', ['-d', loop]);
    server?.stop(fuseDir);
    cleanup();
  });

  test('the mount holds one file of the export size, mode 0600, with nothing allocated yet', () => {
    assert.deepEqual(fs.readdirSync(fuseDir), ['vol1']);
    const st = fs.statSync(file);
    assert.equal(st.size, SIZE);
    assert.equal(st.mode, 0o100600);
    assert.equal(st.blocks, 0);
    const options = fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').find((l) => l.split(' ')[1] === fuseDir)!;
    assert.match(options, /^scrate \S+ fuse\.scrate-volume rw,nosuid,nodev,.*default_permissions/);
  });

  test('ext4 on a loop device: files, sync, fstrim punches holes in the export, fsck clean, remounted equal', async () => {
    attach();
    // The filesystem takes the first GiB: the rest stays for the raw tests below.
    execFileSync('mkfs.ext4', ['-q', '-F', loop!, '1G']);
    execFileSync('mount', [loop!, mnt]);
    const content = new Map<string, Buffer>();
    for (let i = 0; i < 30; i++) content.set(`f${i}`, randomBytes(1000 + i * 41_000));
    for (const [name, data] of content) fs.writeFileSync(path.join(mnt, name), data);
    fs.writeFileSync(path.join(mnt, 'big'), randomBytes(24 * MiB));
    execFileSync('sync');
    const written = await state();
    assert.ok(written.allocated >= 24 * MiB, `${written.allocated} bytes allocated`);
    assert.equal(fs.statSync(file).blocks * 512, written.allocated, 'st_blocks follows the export');
    fs.rmSync(path.join(mnt, 'big'));
    execFileSync('sync');
    execFileSync('fstrim', [mnt]);
    const trimmed = await state();
    assert.ok(trimmed.holes > written.holes, 'fstrim reached zero() with hole');
    assert.ok(written.allocated - trimmed.allocated >= 23 * MiB, `freed ${written.allocated - trimmed.allocated} bytes`);
    execFileSync('umount', [mnt]);
    execFileSync('e2fsck', ['-f', '-n', loop!], { stdio: 'pipe' });
    detach();
    // Direct I/O this time: what is read comes from the export, not from the page cache of the first loop device.
    attach('--direct-io=on');
    execFileSync('mount', ['-o', 'ro', loop!, mnt]);
    assert.deepEqual(fs.readdirSync(mnt).sort(), [...content.keys(), 'lost+found'].sort());
    for (const [name, data] of content) assert.ok(fs.readFileSync(path.join(mnt, name)).equals(data), name);
    execFileSync('umount', [mnt]);
    detach();
  });

  test('the size is fixed: truncate and O_TRUNC are refused (EPERM), the same size and times accepted', async () => {
    await assert.rejects(run('truncate', ['-s', '1M', file]), /Operation not permitted/);
    await run('truncate', ['-s', String(SIZE), file]);
    assert.throws(() => fs.openSync(file, 'w'), { code: 'EPERM' });
    assert.throws(() => fs.chmodSync(file, 0o644), { code: 'EPERM' });
    assert.throws(() => fs.chownSync(file, 1, 1), { code: 'EPERM' });
    const when = new Date('2020-02-03T04:05:06Z');
    fs.utimesSync(file, when, when);
    const st = fs.statSync(file);
    assert.equal(st.mtime.getTime(), when.getTime());
    assert.equal(st.atime.getTime(), when.getTime());
    assert.equal(st.size, SIZE);
    assert.equal(st.mode, 0o100600);
    // touch without a time: "now", resolved by the server.
    const start = Date.now();
    execFileSync('touch', [file]);
    const touched = fs.statSync(file).mtime.getTime();
    assert.ok(touched >= start - 1000 && touched <= Date.now() + 1000, `mtime ${touched}, touched at ${start}`);
  });

  test('fallocate: punch hole and zero range read back zeros and leave the export; other modes refused', async () => {
    const at = 5 * GiB;
    const data = randomBytes(MiB);
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, data, 0, data.length, at);
    fs.closeSync(fd);
    const before = await state();
    await run('fallocate', ['--punch-hole', '--offset', String(at + BLOCK), '--length', String(4 * BLOCK), file]);
    await run('fallocate', ['--zero-range', '--offset', String(at + 8 * BLOCK), '--length', '100000', file]);
    const expected = Buffer.from(data);
    expected.fill(0, BLOCK, 5 * BLOCK);
    expected.fill(0, 8 * BLOCK, 8 * BLOCK + 100_000);
    // Through the page cache (which punching and zeroing drop) and straight from the export.
    const cachedFd = fs.openSync(file, 'r');
    const cached = Buffer.alloc(MiB);
    fs.readSync(cachedFd, cached, 0, MiB, at);
    fs.closeSync(cachedFd);
    assert.ok(cached.equals(expected), 'read through the page cache');
    assert.ok(readExport(at, MiB).equals(expected), 'read from the export');
    const after = await state();
    assert.equal(after.holes, before.holes + 1);
    assert.equal(after.zeroes, before.zeroes + 1);
    // The four punched blocks are gone; the zero range emptied one whole block (the 9th), not the partial 10th.
    assert.equal(before.allocated - after.allocated, 5 * BLOCK);
    await run('fallocate', ['--offset', '0', '--length', String(MiB), file]);
    await assert.rejects(run('fallocate', ['--offset', String(SIZE), '--length', String(MiB), file]), /not supported/);
    await assert.rejects(run('fallocate', ['--collapse-range', '--offset', '0', '--length', String(BLOCK), file]), /not supported/);
  });

  test('writes past 2^32 and at the last byte land there; nothing is written past the end', () => {
    const high = 2 ** 32 + 12_345;
    const data = randomBytes(300_000);
    const fd = fs.openSync(file, 'r+');
    try {
      assert.equal(fs.writeSync(fd, data, 0, data.length, high), data.length);
      assert.equal(fs.writeSync(fd, Buffer.from('z'), 0, 1, SIZE - 1), 1);
      // Across the end: the part that fits, then a full stop.
      assert.equal(fs.writeSync(fd, Buffer.from('ab'), 0, 2, SIZE - 2), 2);
      assert.equal(fs.writeSync(fd, Buffer.from('cd'), 0, 2, SIZE - 1), 1);
      assert.throws(() => fs.writeSync(fd, Buffer.from('x'), 0, 1, SIZE), { code: 'EFBIG' });
    } finally {
      fs.closeSync(fd);
    }
    assert.ok(readExport(high, data.length).equals(data));
    // 2^32 + 12,345 wrapped to 32 bits would be 12,345, inside the ext4 superblock area: it is untouched.
    assert.ok(!readExport(12_345, data.length).equals(data));
    assert.deepEqual(readExport(SIZE - 4, 8), Buffer.from([0, 0, 0x61, 0x63]));
    assert.equal(fs.statSync(file).size, SIZE);
  });

  test('a failing export read fails that read with EIO, said by the server, which serves on', async () => {
    assert.equal(server!.stderr, '');
    assert.throws(() => readExport(POISON, 4096), { code: 'EIO' });
    // Written before the reply, read here once this event loop gets to it.
    assert.ok(await eventually(() => /injected failure/.test(server!.stderr), 5000), server!.stderr);
    assert.equal(readExport(POISON + BLOCK, 4096).length, 4096);
  });

  test('fsync reaches the export flush', async () => {
    const before = await state();
    const fd = fs.openSync(file, 'r+');
    try {
      fs.writeSync(fd, randomBytes(4096), 0, 4096, 3 * GiB);
      assert.equal((await state()).flushes, before.flushes, 'no flush before fsync');
      fs.fsyncSync(fd);
      assert.equal((await state()).flushes, before.flushes + 1);
      fs.fdatasyncSync(fd);
      assert.equal((await state()).flushes, before.flushes + 2);
    } finally {
      fs.closeSync(fd);
    }
  });

  test('concurrent writers and readers on disjoint and shared ranges', async () => {
    const base = 2 * GiB;
    const region = 4 * MiB;
    const writers = 8;
    const data = Array.from({ length: writers }, () => randomBytes(region));
    const handles = await Promise.all(Array.from({ length: writers }, () => fs.promises.open(file, 'r+')));
    try {
      const piece = 256 * KiB;
      // Every writer's pieces interleaved with reads of a neighbour's region, all in flight at once.
      await Promise.all(
        handles.flatMap((h, w) =>
          Array.from({ length: region / piece }, async (_, p) => {
            await h.write(data[w]!, p * piece, piece, base + w * region + p * piece);
            const other = Buffer.alloc(piece);
            await h.read(other, 0, piece, base + ((w + 1) % writers) * region + p * piece);
          }),
        ),
      );
    } finally {
      await Promise.all(handles.map((h) => h.close()));
    }
    for (let w = 0; w < writers; w++) assert.ok(readExport(base + w * region, region).equals(data[w]!), `region ${w}`);
  });

  test('a large write reaches the export in requests of 1 MiB (max_write), not the default 128 KiB', async () => {
    const data = randomBytes(8 * MiB);
    const fd = fs.openSync(file, 'r+');
    try {
      assert.equal(fs.writeSync(fd, data, 0, data.length, 4 * GiB), data.length);
    } finally {
      fs.closeSync(fd);
    }
    assert.equal((await state()).largestWrite, MiB);
    assert.ok(readExport(4 * GiB, data.length).equals(data));
  });

  test('fusermount -u ends the server cleanly, the writes flushed', async () => {
    const before = await state();
    execFileSync('fusermount', ['-u', fuseDir]);
    const ended = JSON.parse(await server!.line('ended')) as ExportState;
    assert.equal(await server!.exited, 0);
    assert.ok(ended.flushes > before.flushes, 'flushed at the end');
    assert.equal(isMounted(fuseDir), false);
  });
});

describe('a read-only export as a FUSE image file', { skip: unavailable ?? false }, () => {
  const { dir, cleanup } = scratch('volfuse-ro');
  const fuseDir = path.join(dir, 'fuse');
  const file = path.join(fuseDir, 'frozen');
  let server: ImageServer | undefined;

  after(() => {
    server?.stop(fuseDir);
    cleanup();
  });

  test('mounted read-only: writes fail with EROFS, reads are zeros; SIGTERM unmounts and ends it', async () => {
    fs.mkdirSync(fuseDir);
    server = new ImageServer(fuseDir, 'frozen', 64 * MiB, true);
    assert.equal(await server.line('ready'), file);
    assert.throws(() => fs.openSync(file, 'r+'), { code: 'EROFS' });
    await assert.rejects(run('fallocate', ['--punch-hole', '--offset', '0', '--length', String(MiB), file]), /Read-only file system|Bad file descriptor/);
    assert.ok(fs.readFileSync(file).equals(Buffer.alloc(64 * MiB)));
    server.child.kill('SIGTERM');
    const stopped = JSON.parse(await server.line('stopped')) as ExportState;
    assert.equal(stopped.flushes, 0, 'a read-only export is not flushed');
    assert.equal(await server.exited, 0);
    assert.equal(isMounted(fuseDir), false);
  });
});

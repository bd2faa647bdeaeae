import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { assertCleanError, cliEnv, scrate } from './helpers/cli.js';
import { loopDevicesUnavailable } from './helpers/disk.js';
import { scratch } from './helpers/repo.js';
import { NbdDisk, nbdClientsMissing, startServe, unmount, type RunningServe } from './helpers/volume.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const clients = nbdClientsMissing();
const noLoop = loopDevicesUnavailable();
if (noLoop && process.env['CI']) throw new Error(`volume tests cannot run: ${noLoop}`);
const skip = clients || noLoop || false;

/** Bytes of every object in a local repository. */
function repoBytes(repo: string): number {
  let n = 0;
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else n += fs.statSync(p).size;
    }
  };
  walk(repo);
  return n;
}

function writeTree(root: string, seed: number, files: number): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (let i = 0; i < files; i++) {
    const rel = path.join(`d${i % 5}`, `f${seed}-${i}`);
    const data = i % 3 === 0 ? Buffer.from(`text ${seed} ${i}\n`.repeat(2000 + i * 50)) : randomBytes(500 + i * 9_000);
    fs.mkdirSync(path.join(root, path.dirname(rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), data);
    out.set(rel, data);
  }
  return out;
}

function assertTree(root: string, expected: Map<string, Buffer>): void {
  for (const [rel, data] of expected) assert.ok(fs.readFileSync(path.join(root, rel)).equals(data), rel);
}

describe('a volume served over NBD, with ext4 on it', { skip }, () => {
  const { dir, cleanup } = scratch('volume');
  const repo = path.join(dir, 'repo');
  const env = cliEnv(repo, { XDG_CACHE_HOME: path.join(dir, 'cache') });
  const sock = path.join(dir, 'vol.sock');
  const mnt = path.join(dir, 'mnt');
  const disk = new NbdDisk(path.join(dir, 'nbd'), sock);
  let serve: RunningServe | undefined;

  before(() => {
    fs.mkdirSync(mnt);
    assert.equal(scrate(['init'], env).code, 0);
  });
  // A failed test leaves nothing behind for the next one.
  afterEach(async () => {
    unmount(mnt);
    disk.detach(true);
    if (serve) {
      serve.child.kill('SIGKILL');
      await serve.exited;
      serve = undefined;
    }
  });
  after(cleanup);

  async function stop(): Promise<void> {
    serve!.child.kill('SIGTERM');
    const r = await serve!.exited;
    assert.equal(r.code, 143, r.stderr);
    serve = undefined;
  }

  test('an empty 256 TiB volume and an empty commit store at most 1 MiB each', async () => {
    const before = repoBytes(repo);
    const r = scrate(['volume', 'create', 'huge', '--size', '256T'], env);
    assert.equal(r.code, 0, r.stderr);
    const created = repoBytes(repo);
    assert.ok(created - before <= MiB, `create stored ${created - before} bytes`);
    const c = scrate(['volume', 'commit', 'huge'], env);
    assert.equal(c.code, 0, c.stderr);
    const committed = repoBytes(repo);
    assert.ok(committed - created <= MiB, `an empty commit stored ${committed - created} bytes`);
    // 20 MB written, then a commit: at most 25 MB more (the blocks, a map delta, index, records).
    const data = path.join(dir, '20MB');
    fs.writeFileSync(data, randomBytes(20_000_000));
    serve = await startServe(env, 'huge', sock);
    await run('nbdcopy', ['--flush', data, `nbd+unix:///huge?socket=${sock}`]);
    const c2 = scrate(['volume', 'commit', 'huge'], env);
    assert.equal(c2.code, 0, c2.stderr);
    await stop();
    const grown = repoBytes(repo) - committed;
    assert.ok(grown >= 20_000_000 && grown <= 25_000_000, `writing 20 MB and committing stored ${grown} bytes`);
  });

  let treeA: Map<string, Buffer>;
  let treeB: Map<string, Buffer>;
  test('mkfs, a tree, sync, commit a; change it, commit b; served again the tree is whole and fsck clean', async () => {
    assert.equal(scrate(['volume', 'create', 'vol1', '--size', '1G'], env).code, 0);
    serve = await startServe(env, 'vol1', sock, ['--write-delay', '0s']);
    const loop = await disk.attach();
    execFileSync('mkfs.ext4', ['-q', '-F', loop]);
    execFileSync('mount', [loop, mnt]);
    treeA = writeTree(mnt, 1, 40);
    execFileSync('sync', ['-f', mnt]);
    let c = scrate(['volume', 'commit', 'vol1', '--tag', 'a'], env);
    assert.equal(c.code, 0, c.stderr);
    fs.rmSync(path.join(mnt, 'd1'), { recursive: true });
    for (const k of [...treeA.keys()]) if (k.startsWith('d1/')) treeA.delete(k);
    treeB = writeTree(mnt, 2, 20);
    execFileSync('sync', ['-f', mnt]);
    c = scrate(['volume', 'commit', 'vol1', '--tag', 'b'], env);
    assert.equal(c.code, 0, c.stderr);
    execFileSync('umount', [mnt]);
    disk.detach();
    await stop();

    serve = await startServe(env, 'vol1', sock);
    const again = await disk.attach();
    execFileSync('e2fsck', ['-f', '-n', again], { stdio: 'pipe' });
    execFileSync('mount', [again, mnt]);
    assertTree(mnt, treeA);
    assertTree(mnt, treeB);
    execFileSync('umount', [mnt]);
    disk.detach();
    await stop();
  });

  test('commit a served read-only shows the older tree; writes are refused', async () => {
    const snaps = JSON.parse(scrate(['snapshots', '--json', '--tag', 'a'], env).stdout) as { id: string }[];
    assert.equal(snaps.length, 1);
    serve = await startServe(env, 'vol1', sock, ['--at', snaps[0]!.id, '--read-only']);
    const loop = await disk.attach();
    execFileSync('mount', ['-o', 'ro,noload', loop, mnt]);
    assertTree(mnt, treeA);
    assert.ok(!fs.existsSync(path.join(mnt, [...treeB.keys()][0]!)), 'b is not in a');
    execFileSync('umount', [mnt]);
    disk.detach();
    await assert.rejects(run('qemu-io', ['-f', 'raw', '-c', 'write 0 4k', `nbd+unix:///vol1?socket=${sock}`]));
    await stop();
  });

  test('restore of commit b gives the image the volume serves', async () => {
    const snaps = JSON.parse(scrate(['snapshots', '--json', '--tag', 'b'], env).stdout) as { id: string }[];
    const img = path.join(dir, 'b.img');
    // A snapshot of one image restores to the file (or device) given as target, as a device backup does.
    const restored = path.join(dir, 'restored.img');
    const r = scrate(['restore', snaps[0]!.id, '--target', restored], env);
    assert.equal(r.code, 0, r.stderr);
    serve = await startServe(env, 'vol1', sock, ['--at', snaps[0]!.id, '--read-only']);
    await run('nbdcopy', [`nbd+unix:///vol1?socket=${sock}`, img]);
    await stop();
    assert.ok(fs.readFileSync(restored).equals(fs.readFileSync(img)), 'restored image equals the served one');
    assert.ok(fs.statSync(restored).blocks * 512 < fs.statSync(restored).size / 4, 'the restored image is sparse');
    const check = scrate(['check', '--read-data'], env);
    assert.equal(check.code, 0, check.stderr);
  });

  test('copy of the commits to a second repository: restored there, commit b is the same image', () => {
    const second = path.join(dir, 'second');
    const env2 = cliEnv(second, { XDG_CACHE_HOME: path.join(dir, 'cache'), SCRATE_FROM_REPOSITORY: repo, SCRATE_FROM_PASSWORD: env['SCRATE_PASSWORD']! });
    assert.equal(scrate(['init', '--from-repo', repo, '--copy-chunker-params'], env2).code, 0);
    const c = scrate(['copy', '--tag', 'b'], env2);
    assert.equal(c.code, 0, c.stderr);
    const copied = path.join(dir, 'copied.img');
    const r = scrate(['restore', 'latest', '--tag', 'b', '--target', copied], env2);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(fs.readFileSync(copied).equals(fs.readFileSync(path.join(dir, 'b.img'))), 'the copy restores to the image served');
    const check = scrate(['check', '--read-data'], env2);
    assert.equal(check.code, 0, check.stderr);
  });

  test('kill -9 of the server right after sync loses nothing: served again, every synced file is there, fsck clean', async () => {
    serve = await startServe(env, 'vol1', sock, ['--write-delay', '60s']);
    const loop = await disk.attach();
    execFileSync('mount', [loop, mnt]);
    const treeC = writeTree(mnt, 3, 30);
    execFileSync('sync', ['-f', mnt]);
    serve.child.kill('SIGKILL');
    await serve.exited;
    serve = undefined;
    unmount(mnt);
    disk.detach(true);

    serve = await startServe(env, 'vol1', sock);
    assert.match(serve.output(), /replay/i);
    const again = await disk.attach();
    execFileSync('mount', [again, mnt]);
    assertTree(mnt, treeC);
    assertTree(mnt, treeB);
    execFileSync('umount', [mnt]);
    execFileSync('e2fsck', ['-f', '-n', again], { stdio: 'pipe' });
    disk.detach();
    await stop();
  });

  test('bad options and names are one-line errors', () => {
    assertCleanError(scrate(['volume', 'serve', 'vol1'], env), 1, /--socket PATH or --listen/);
    assertCleanError(scrate(['volume', 'serve', 'vol1', '--socket', sock, '--at', 'latest'], env), 1, /--read-only/);
    assertCleanError(scrate(['volume', 'serve', 'vol1', '--socket', sock, '--cache-size', '1M'], env), 1, /--cache-size must be at least/);
    assertCleanError(scrate(['volume', 'serve', 'nope', '--socket', sock], env), 1, /no volume "nope"/);
    assertCleanError(scrate(['volume', 'commit', 'nope'], env), 1, /no volume "nope"/);
    assertCleanError(scrate(['--no-cache', 'volume', 'serve', 'vol1', '--socket', sock], env), 1, /needs a local cache/);
    const tcp = scrate(['volume', 'serve', 'vol1', '--listen', '0.0.0.0:10809'], env);
    assert.equal(tcp.code, 1);
    assert.match(tcp.stderr, /only a loopback address/);
  });

  test('a second serve of the same volume is refused, naming the holder', async () => {
    serve = await startServe(env, 'vol1', sock);
    const r = scrate(['volume', 'serve', 'vol1', '--socket', path.join(dir, 'other.sock')], env);
    assert.equal(r.code, 11, r.stderr);
    assert.match(r.stderr, /vol1.*served|served.*vol1/);
    await stop();
    assert.ok(!fs.existsSync(sock), 'socket removed');
  });
});

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { cliEnv, scrate, scrateAsync } from './helpers/cli.js';
import { loopDevicesUnavailable } from './helpers/disk.js';
import { fuseUnavailable, isMounted } from './helpers/fuse-mount.js';
import { scratch } from './helpers/repo.js';
import { unmount } from './helpers/volume.js';

const unavailable = fuseUnavailable() ?? loopDevicesUnavailable();
if (unavailable && process.env['CI']) throw new Error(`volume mount tests cannot run: ${unavailable}`);

describe('a volume as a FUSE image file (volume mount), ext4 on a loop device over it', { skip: unavailable ?? false }, () => {
  const { dir, cleanup } = scratch('volmount');
  const repo = path.join(dir, 'repo');
  const env = cliEnv(repo, { XDG_CACHE_HOME: path.join(dir, 'cache') });
  const image = path.join(dir, 'image');
  const mnt = path.join(dir, 'mnt');
  const file = path.join(image, 'vol1');
  let child: ReturnType<typeof scrateAsync> | undefined;
  let exited: Promise<number> | undefined;
  let loop: string | undefined;

  async function mountVolume(): Promise<void> {
    child = scrateAsync(['volume', 'mount', 'vol1', image, '--write-delay', '1s'], env);
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    exited = new Promise((resolve) => child!.once('exit', (code, signal) => resolve(code ?? (signal === 'SIGKILL' ? 137 : 128))));
    for (let i = 0; i < 400 && !isMounted(image); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(isMounted(image), `volume mount did not mount: ${err}`);
    loop = execFileSync('losetup', ['--find', '--show', file]).toString().trim();
  }

  function teardown(): void {
    unmount(mnt);
    if (loop) spawnSync('losetup', ['-d', loop]);
    loop = undefined;
    if (isMounted(image)) spawnSync('fusermount', ['-u', '-z', image]);
  }

  before(() => {
    fs.mkdirSync(image);
    fs.mkdirSync(mnt);
    assert.equal(scrate(['init'], env).code, 0);
    assert.equal(scrate(['volume', 'create', 'vol1', '--size', '512M'], env).code, 0);
  });
  afterEach(async () => {
    teardown();
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  after(cleanup);

  const files = new Map<string, Buffer>();
  test('mkfs, files, sync, commit while mounted, fstrim; kill -9 after sync; mounted again nothing is lost and fsck is clean', async () => {
    await mountVolume();
    assert.equal(fs.statSync(file).size, 512 * 1024 * 1024);
    execFileSync('mkfs.ext4', ['-q', '-F', loop!]);
    execFileSync('mount', [loop!, mnt]);
    for (let i = 0; i < 30; i++) {
      const data = randomBytes(1000 + i * 20_000);
      files.set(`f${i}`, data);
      fs.writeFileSync(path.join(mnt, `f${i}`), data);
    }
    execFileSync('sync', ['-f', mnt]);
    const c = scrate(['volume', 'commit', 'vol1', '--tag', 'mounted'], env);
    assert.equal(c.code, 0, c.stderr);
    fs.writeFileSync(path.join(mnt, 'big'), randomBytes(8 * 1024 * 1024));
    fs.rmSync(path.join(mnt, 'big'));
    execFileSync('fstrim', [mnt]);
    fs.writeFileSync(path.join(mnt, 'late'), 'written after the commit');
    files.set('late', Buffer.from('written after the commit'));
    execFileSync('sync', ['-f', mnt]);
    child!.kill('SIGKILL');
    assert.equal(await exited, 137);
    teardown();

    await mountVolume();
    execFileSync('mount', [loop!, mnt]);
    for (const [name, data] of files) assert.ok(fs.readFileSync(path.join(mnt, name)).equals(data), name);
    execFileSync('umount', [mnt]);
    execFileSync('e2fsck', ['-f', '-n', loop!], { stdio: 'pipe' });
    spawnSync('losetup', ['-d', loop!]);
    loop = undefined;
    execFileSync('fusermount', ['-u', image]);
    assert.equal(await exited, 0, 'fusermount -u ends it cleanly');
  });

  test('the image has a fixed size: truncate is refused; a punched hole reads back zeros', async () => {
    await mountVolume();
    const r = spawnSync('truncate', ['-s', '1M', file], { encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /not permitted/i);
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.alloc(128 * 1024, 7), 0, 128 * 1024, 1024 * 1024);
    fs.closeSync(fd);
    execFileSync('fallocate', ['-p', '-o', String(1024 * 1024), '-l', String(128 * 1024), file]);
    const back = Buffer.alloc(128 * 1024, 1);
    const rd = fs.openSync(file, 'r');
    fs.readSync(rd, back, 0, back.length, 1024 * 1024);
    fs.closeSync(rd);
    assert.ok(back.every((b) => b === 0));
    spawnSync('losetup', ['-d', loop!]);
    loop = undefined;
    child!.kill('SIGTERM');
    assert.equal(await exited, 143);
    assert.ok(!isMounted(image));
  });

  test('the commit made while mounted restores to the image of that moment: the files synced before it', () => {
    const snaps = JSON.parse(scrate(['snapshots', '--json', '--tag', 'mounted'], env).stdout) as { id: string }[];
    const img = path.join(dir, 'commit.img');
    const r = scrate(['restore', snaps[0]!.id, '--target', img], env);
    assert.equal(r.code, 0, r.stderr);
    loop = execFileSync('losetup', ['--find', '--show', '-r', img]).toString().trim();
    execFileSync('mount', ['-o', 'ro,noload', loop, mnt]);
    for (const [name, data] of files) if (name !== 'late') assert.ok(fs.readFileSync(path.join(mnt, name)).equals(data), name);
    assert.ok(!fs.existsSync(path.join(mnt, 'late')));
  });
});

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cliEnv, jsonMessage, SCRATE, scrate } from './helpers/cli.js';
import { attachLoop, changeFiles, detachLoop, loopDevicesUnavailable, makeExt4Image, mount, umount } from './helpers/disk.js';
import { scratch } from './helpers/repo.js';

const unavailable = loopDevicesUnavailable();
const MiB = 1024 * 1024;

function sha256File(file: string): string {
  const h = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.allocUnsafe(16 * MiB);
  try {
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

const allocated = (file: string) => fs.statSync(file).blocks * 512;

describe('block devices', { skip: unavailable ?? false }, () => {
  let tmp: ReturnType<typeof scratch>;
  let env: NodeJS.ProcessEnv;
  const loops: string[] = [];
  const mounts: string[] = [];

  before(() => {
    tmp = scratch('device');
    env = cliEnv(path.join(tmp.dir, 'repo'));
    assert.equal(scrate(['init'], env).code, 0);
  });
  after(() => {
    for (const m of mounts.reverse()) execFileSync('umount', [m], { stdio: 'ignore' });
    for (const l of loops) detachLoop(l);
    tmp.cleanup();
  });

  const attach = (image: string) => {
    const dev = attachLoop(image);
    loops.push(dev);
    return dev;
  };
  const detach = (dev: string) => {
    detachLoop(dev);
    loops.splice(loops.indexOf(dev), 1);
  };
  const backupJson = (args: string[]) => {
    const r = scrate(['backup', '--json', ...args], env);
    assert.equal(r.code, 0, r.stderr);
    return jsonMessage<{ files_new: number; data_added_packed: number; total_bytes_processed: number; bytes_read: number }>(r.stdout, 'summary');
  };

  test('an ext4 device: incremental backup costs about the change; restore to another device is identical', () => {
    const image = path.join(tmp.dir, 'fs.img');
    const trees = ['/usr/include', '/usr/lib/python3.11'].filter((t) => fs.existsSync(t));
    makeExt4Image(image, 1024, trees, path.join(tmp.dir, 'mnt-setup'));
    let dev = attach(image);
    const first = backupJson([dev, '--tag', 'first']);
    assert.equal(first.files_new, 1);
    // Most of the device is empty, and empty regions cost nothing.
    assert.ok(first.data_added_packed < first.total_bytes_processed / 4, `stored ${first.data_added_packed} of ${first.total_bytes_processed}`);

    const mnt = path.join(tmp.dir, 'mnt-a');
    mount(dev, mnt);
    const changed = changeFiles(mnt, 20 * 1000 * 1000);
    umount(mnt);
    detach(dev);
    dev = attach(image);
    const second = backupJson([dev, '--tag', 'second']);
    assert.ok(second.data_added_packed <= 3 * changed, `second backup added ${second.data_added_packed} for ${changed} changed`);

    const copy = path.join(tmp.dir, 'copy.img');
    fs.writeFileSync(copy, '');
    fs.truncateSync(copy, 1024 * MiB);
    const target = attach(copy);
    const r = scrate(['restore', 'latest', '--tag', 'second', '--target', target, '--verify'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /verified/);
    execFileSync('fsck.ext4', ['-n', '-f', target], { stdio: 'pipe' });
    const a = path.join(tmp.dir, 'mnt-orig');
    const b = path.join(tmp.dir, 'mnt-copy');
    mount(dev, a, true);
    mounts.push(a);
    mount(target, b, true);
    mounts.push(b);
    execFileSync('diff', ['-r', '--no-dereference', a, b], { stdio: 'pipe' });
    assert.equal(sha256File(dev), sha256File(target));
  });

  test('a restore refuses a device smaller than the image', () => {
    const small = path.join(tmp.dir, 'small.img');
    fs.writeFileSync(small, '');
    fs.truncateSync(small, 64 * MiB);
    const dev = attach(small);
    const r = scrate(['restore', 'latest', '--tag', 'second', '--target', dev], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /holds 67108864 bytes, less than the image's/);
    assert.equal(fs.statSync(small).size, 64 * MiB, 'never grown');
  });

  test('an 8 GiB sparse image adds under 1 MiB and restores sparse with the same SHA-256', () => {
    const image = path.join(tmp.dir, 'sparse.img');
    fs.writeFileSync(image, '');
    fs.truncateSync(image, 8 * 1024 * MiB);
    const fd = fs.openSync(image, 'r+');
    fs.writeSync(fd, randomBytes(100_000), 0, 100_000, 3 * 1024 * MiB + 12345);
    fs.closeSync(fd);
    const s = backupJson([image, '--as-device', '--tag', 'sparse']);
    assert.ok(s.data_added_packed < MiB, `added ${s.data_added_packed}`);
    assert.equal(s.bytes_read, 8 * 1024 * MiB);

    const out = path.join(tmp.dir, 'restored-sparse.img');
    const r = scrate(['restore', 'latest', '--tag', 'sparse', '--target', out], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.statSync(out).size, 8 * 1024 * MiB);
    assert.ok(allocated(out) < 4 * MiB, `restored sparse: ${allocated(out)} bytes allocated`);
    assert.equal(sha256File(out), sha256File(image));
  });
});

describe('streams', () => {
  let tmp: ReturnType<typeof scratch>;
  let env: NodeJS.ProcessEnv;
  before(() => {
    tmp = scratch('stream');
    env = cliEnv(path.join(tmp.dir, 'repo'));
    assert.equal(scrate(['init'], env).code, 0);
  });
  after(() => tmp.cleanup());

  test('--stdin stores standard input as one file; dump gives it back', () => {
    const data = randomBytes(3 * MiB);
    const r = scrate(['backup', '--stdin', '--stdin-filename', 'db.sql', '--json'], env, { input: data, stdio: ['pipe', 'pipe', 'pipe'] });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(scrate(['snapshots', '--json'], env).stdout)[0].paths, ['/db.sql']);
    const dumped = execFileSync(SCRATE, ['dump', 'latest', '/db.sql'], { env, maxBuffer: 64 * MiB });
    assert.deepEqual(dumped, data);

    // A writer slower than scrate: the pipe is empty when scrate first reads it.
    const file = path.join(tmp.dir, 'late.bin');
    fs.writeFileSync(file, data);
    execFileSync('sh', ['-c', `(sleep 1; cat "${file}") | "${SCRATE}" backup -q --stdin --stdin-filename late.bin`], { env });
    assert.deepEqual(execFileSync(SCRATE, ['dump', 'latest', '/late.bin'], { env, maxBuffer: 64 * MiB }), data);
  });

  test('--stdin-from-command: a failing command leaves no snapshot, exit code 1', () => {
    const before = JSON.parse(scrate(['snapshots', '--json'], env).stdout).length;
    const bad = scrate(['backup', '--stdin-from-command', '--', 'sh', '-c', 'echo partial; exit 4'], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /sh failed \(exit code 4\); no snapshot was written/);
    assert.equal(JSON.parse(scrate(['snapshots', '--json'], env).stdout).length, before);

    const good = scrate(['backup', '--stdin-from-command', '--stdin-filename', 'seq.txt', '--', 'seq', '1', '50000'], env);
    assert.equal(good.code, 0, good.stderr);
    const dumped = execFileSync(SCRATE, ['dump', 'latest', '/seq.txt'], { env }).toString();
    assert.equal(dumped, execFileSync('seq', ['1', '50000']).toString());
  });
});

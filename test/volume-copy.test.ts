import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { scrate } from './helpers/cli.js';
import { nbdClientsMissing, startServe, volumeScratch, type RunningServe } from './helpers/volume.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const skip = nbdClientsMissing();

/** Bytes of the data packs of a local repository. */
function packBytes(repo: string): number {
  let n = 0;
  for (const sub of fs.readdirSync(path.join(repo, 'data'), { withFileTypes: true }))
    if (sub.isDirectory()) for (const f of fs.readdirSync(path.join(repo, 'data', sub.name))) n += fs.statSync(path.join(repo, 'data', sub.name, f)).size;
  return n;
}

/** A 64 MiB image: random 1 MiB runs with holes and zero-filled stretches between. */
function sparseImage(file: string): Buffer {
  const image = Buffer.alloc(64 * MiB);
  for (let at = 0; at < image.length; at += 4 * MiB) randomBytes(MiB + (at % 3) * 64 * 1024).copy(image, at);
  fs.writeFileSync(file, image);
  return image;
}

describe('a volume round-trips images through nbdcopy and qemu-img; trims shrink commits', { skip }, () => {
  const { dir, cleanup, repo, env, sock, uri } = volumeScratch('volcopy');
  let serve: RunningServe | undefined;

  before(() => {
    assert.equal(scrate(['init'], env).code, 0);
    assert.equal(scrate(['volume', 'create', 'disk', '--size', '256M'], env).code, 0);
  });
  after(() => {
    serve?.child.kill('SIGKILL');
    cleanup();
  });

  test('nbdcopy in and out bit-exact; the copy out is sparse; qemu-img convert agrees', async () => {
    const src = path.join(dir, 'src.img');
    const image = sparseImage(src);
    serve = await startServe(env, 'disk', sock);
    await run('nbdcopy', [src, uri]);
    const out = path.join(dir, 'out.img');
    await run('nbdcopy', [uri, out]);
    const got = fs.readFileSync(out);
    assert.equal(got.length, 256 * MiB);
    assert.ok(got.subarray(0, image.length).equals(image));
    assert.ok(got.subarray(image.length).every((b) => b === 0));
    // nbdcopy follows BLOCK_STATUS: holes are not written, so the copy allocates about the data.
    assert.ok(fs.statSync(out).blocks * 512 < 40 * MiB, `allocated ${fs.statSync(out).blocks * 512}`);
    const q = path.join(dir, 'q.img');
    await run('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', uri, q]);
    assert.ok(fs.readFileSync(q).equals(got));
    const map = JSON.parse((await run('nbdinfo', ['--map', '--json', uri])).stdout) as { type: number; length: number }[];
    const data = map.filter((e) => (e.type & 1) === 0).reduce((n, e) => n + e.length, 0);
    assert.ok(data >= 16 * MiB && data < 40 * MiB, `data extents ${data}`);
  });

  test('TRIM and zero writes shrink what the next commit maps; prune then frees the blocks', async () => {
    let c = scrate(['volume', 'commit', 'disk', '--tag', 'full'], env);
    assert.equal(c.code, 0, c.stderr);
    // Trim the first half of the data, write zeros over the second.
    await run('qemu-io', ['-f', 'raw', '-c', 'discard 0 32M', '-c', 'write -z 32M 32M', '-c', 'flush', uri]);
    const r = await run('qemu-io', ['-f', 'raw', '-c', 'read -P 0 0 64M', uri]);
    assert.doesNotMatch(r.stdout, /fail|mismatch/i);
    c = scrate(['volume', 'commit', 'disk', '--tag', 'empty'], env);
    assert.equal(c.code, 0, c.stderr);
    serve!.child.kill('SIGTERM');
    assert.equal((await serve!.exited).code, 143);
    serve = undefined;
    const stats = JSON.parse(scrate(['stats', '--json', '--tag', 'empty', '--mode', 'raw-data'], env).stdout) as { total_size: number };
    assert.ok(stats.total_size < MiB, `the trimmed commit maps ${stats.total_size} bytes`);
    const before = packBytes(repo);
    const full = (JSON.parse(scrate(['snapshots', '--json', '--tag', 'full'], env).stdout) as { id: string }[])[0]!.id;
    const f = scrate(['forget', full, '--prune'], env);
    assert.equal(f.code, 0, f.stderr);
    assert.ok(packBytes(repo) < before - 16 * MiB, `prune freed ${before - packBytes(repo)} bytes`);
    assert.equal(scrate(['check', '--read-data'], env).code, 0);
  });
});

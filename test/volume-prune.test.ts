import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { cliEnv, scrate } from './helpers/cli.js';
import { nbdClientsMissing, startServe, volumeScratch, type RunningServe } from './helpers/volume.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const skip = nbdClientsMissing();

function packNames(repo: string): Set<string> {
  const out = new Set<string>();
  // Pack directories only: an upload in flight is a temporary file beside them.
  for (const sub of fs.readdirSync(path.join(repo, 'data'), { withFileTypes: true })) if (sub.isDirectory()) for (const f of fs.readdirSync(path.join(repo, 'data', sub.name))) out.add(f);
  return out;
}

describe('prune beside a served volume', { skip }, () => {
  const { dir, cleanup, repo, base, env, sock, uri } = volumeScratch('volprune');
  let serve: RunningServe | undefined;
  after(() => {
    serve?.child.kill('SIGKILL');
    cleanup();
  });

  test('blocks uploaded but not yet in a head survive a prune; overwritten ones go once the serve recorded and restarted', async () => {
    assert.equal(scrate(['init'], env).code, 0);
    assert.equal(scrate(['volume', 'create', 'disk', '--size', '64M'], env).code, 0);
    // A long checkpoint period: what is uploaded stays out of every head until the serve ends or commits.
    serve = await startServe(cliEnv(repo, { ...base, SCRATE_TEST_VOLUME_CHECKPOINT_MS: '3600000' }), 'disk', sock, ['--write-delay', '0s']);
    // Random data: every block its own blob, so the packs written now hold only A's blocks.
    const a = path.join(dir, 'a.img');
    const b = path.join(dir, 'b.img');
    fs.writeFileSync(a, randomBytes(32 * MiB));
    fs.writeFileSync(b, randomBytes(32 * MiB));
    const before = packNames(repo);
    await run('nbdcopy', ['--flush', a, uri]);
    const fresh = () => [...packNames(repo)].filter((pack) => !before.has(pack));
    for (let i = 0; i < 300 && fresh().length < 2; i++) await new Promise((r) => setTimeout(r, 100));
    const uploaded = new Set(fresh());
    assert.ok(uploaded.size >= 2, 'blocks were uploaded');
    const p = scrate(['prune', '--delete-after', '0s'], env);
    assert.equal(p.code, 0, p.stderr);
    for (const pack of uploaded) assert.ok(packNames(repo).has(pack), `pack ${pack} is still there`);
    const out = path.join(dir, 'out.img');
    await run('nbdcopy', [uri, out]);
    assert.ok(fs.readFileSync(out).subarray(0, 32 * MiB).equals(fs.readFileSync(a)), 'A reads back');
    // A commit records them; overwritten then, the old blocks are unused by the head but kept by the commit.
    assert.equal(scrate(['volume', 'commit', 'disk', '--tag', 'a'], env).code, 0);
    await run('nbdcopy', ['--flush', b, uri]);
    assert.equal(scrate(['volume', 'commit', 'disk'], env).code, 0);
    // forget takes an exclusive lock (as restic's): not beside a serve.
    const commitA = (JSON.parse(scrate(['snapshots', '--json', '--tag', 'a'], env).stdout) as { id: string }[])[0]!.id;
    assert.equal(scrate(['forget', commitA], env).code, 11);
    serve.child.kill('SIGTERM');
    assert.equal((await serve.exited).code, 143);
    assert.equal(scrate(['forget', commitA], env).code, 0);
    serve = await startServe(cliEnv(repo, { ...base, SCRATE_TEST_VOLUME_CHECKPOINT_MS: '3600000' }), 'disk', sock);
    // Beside the serve a prune only marks; once the serve recorded a head (a commit) its lock
    // restarted after the mark, and a later prune deletes what was marked.
    const marking = scrate(['prune', '--delete-after', '0s'], env);
    assert.equal(marking.code, 0, marking.stderr);
    assert.ok([...uploaded].every((pack) => packNames(repo).has(pack)), 'only marked while the serve is older than the mark');
    assert.equal(scrate(['volume', 'commit', 'disk'], env).code, 0);
    const deleting = scrate(['prune', '--delete-after', '0s'], env);
    assert.equal(deleting.code, 0, deleting.stderr);
    const left = [...uploaded].filter((pack) => packNames(repo).has(pack));
    assert.equal(left.length, 0, `the packs of the overwritten blocks are gone (left: ${left.length})`);
    await run('nbdcopy', [uri, out]);
    assert.ok(fs.readFileSync(out).subarray(0, 32 * MiB).equals(fs.readFileSync(b)), 'B reads back');
    serve.child.kill('SIGTERM');
    assert.equal((await serve.exited).code, 143);
    serve = undefined;
    const check = scrate(['check', '--read-data'], env);
    assert.equal(check.code, 0, check.stderr);
  });

  test('packs a prune repacks beside the serve: reads go to the new copies, before and after the old ones are deleted', async () => {
    assert.equal(scrate(['volume', 'create', 'churn', '--size', '64M'], env).code, 0);
    const curi = `nbd+unix:///churn?socket=${sock}`;
    serve = await startServe(cliEnv(repo, { ...base, SCRATE_TEST_VOLUME_CHECKPOINT_MS: '300' }), 'churn', sock, ['--write-delay', '0s']);
    const image = randomBytes(32 * MiB);
    const file = path.join(dir, 'churn.img');
    fs.writeFileSync(file, image);
    await run('nbdcopy', ['--flush', file, curi]);
    // Every other 64 KiB block rewritten: each pack ends up half used, and a prune repacks it.
    const commands: string[] = [];
    for (let at = 0; at < 32 * MiB; at += 128 * 1024) {
      commands.push('-c', `write -P 99 ${at} 64k`);
      image.fill(99, at, at + 64 * 1024);
    }
    await run('qemu-io', ['-f', 'raw', ...commands, '-c', 'flush', curi]);
    await new Promise((r) => setTimeout(r, 2000));
    const repack = scrate(['prune', '--delete-after', '0s', '--max-unused', '0'], env);
    assert.equal(repack.code, 0, repack.stderr);
    assert.match(repack.stdout, /[1-9]\d* repacked/);
    await run('qemu-io', ['-f', 'raw', '-c', 'write -P 7 63M 64k', '-c', 'flush', curi]);
    await new Promise((r) => setTimeout(r, 2000));
    const deleting = scrate(['prune', '--delete-after', '0s', '--max-unused', '0'], env);
    assert.equal(deleting.code, 0, deleting.stderr);
    const out = path.join(dir, 'churn.out');
    await run('nbdcopy', [curi, out]);
    assert.ok(fs.readFileSync(out).subarray(0, 32 * MiB).equals(image), 'the volume reads back whole');
    assert.doesNotMatch(serve.output(), /missing|internal error/);
    serve.child.kill('SIGTERM');
    assert.equal((await serve.exited).code, 143);
    serve = undefined;
  });
});

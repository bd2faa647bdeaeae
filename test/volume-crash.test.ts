import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { scrate } from './helpers/cli.js';
import { nbdClientsMissing, startServe, volumeScratch, type RunningServe } from './helpers/volume.js';

const run = promisify(execFile);
const SIZE = 64 * 1024 * 1024;
const skip = nbdClientsMissing();

/** A small deterministic generator: the test's writes are the same on every run. */
function generator(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x / 2 ** 31;
  };
}

describe('kill -9 at random moments of uploads and checkpoints loses no flushed write', { skip }, () => {
  const { dir, cleanup, env, sock, uri } = volumeScratch('volcrash', { SCRATE_TEST_VOLUME_CHECKPOINT_MS: '150' });
  let serve: RunningServe | undefined;
  after(() => {
    serve?.child.kill('SIGKILL');
    cleanup();
  });

  test('8 rounds of writes, zeroes and trims, a flush, then kill -9 while uploading; served again the disk equals the model', async () => {
    assert.equal(scrate(['init'], env).code, 0);
    assert.equal(scrate(['volume', 'create', 'disk', '--size', String(SIZE), '--block-size', '16K'], env).code, 0);
    const model = Buffer.alloc(SIZE);
    const random = generator(25);
    let replays = 0;
    for (let round = 0; round < 8; round++) {
      serve = await startServe(env, 'disk', sock, ['--write-delay', '0s']);
      if (/replayed/.test(serve.output())) replays++;
      const commands: string[] = [];
      for (let i = 0; i < 60; i++) {
        const offset = Math.floor(random() * (SIZE / 512 - 512)) * 512;
        const length = (1 + Math.floor(random() * 256)) * 512;
        const kind = random();
        if (kind < 0.8) {
          const pattern = 1 + Math.floor(random() * 254);
          commands.push('-c', `write -P ${pattern} ${offset} ${length}`);
          model.fill(pattern, offset, offset + length);
        } else {
          commands.push('-c', kind < 0.9 ? `write -z ${offset} ${length}` : `discard ${offset} ${length}`);
          model.fill(0, offset, offset + length);
        }
      }
      await run('qemu-io', ['-f', 'raw', ...commands, '-c', 'flush', uri]);
      // Somewhere in the uploads and checkpoints that follow a flush.
      await new Promise((r) => setTimeout(r, Math.floor(random() * 1200)));
      serve.child.kill('SIGKILL');
      await serve.exited;
      serve = undefined;
    }
    serve = await startServe(env, 'disk', sock);
    if (/replayed/.test(serve.output())) replays++;
    // Some kills came before the uploads were done (else this test tested nothing of replay).
    assert.ok(replays > 0, 'some serve replayed its cache');
    const out = path.join(dir, 'out.img');
    await run('nbdcopy', [uri, out]);
    const got = fs.readFileSync(out);
    assert.equal(got.length, SIZE);
    if (!got.equals(model)) {
      let at = 0;
      while (got[at] === model[at]) at++;
      assert.fail(`the disk differs from the model first at byte ${at}`);
    }
    serve.child.kill('SIGTERM');
    assert.equal((await serve.exited).code, 143);
    serve = undefined;
    const check = scrate(['check', '--read-data'], env);
    assert.equal(check.code, 0, check.stderr + check.stdout);
    // Everything was uploaded at the clean stop: served again from the repository alone, still the model.
    fs.rmSync(path.join(dir, 'cache'), { recursive: true });
    serve = await startServe(env, 'disk', sock, ['--read-only']);
    await run('nbdcopy', [uri, out]);
    assert.ok(fs.readFileSync(out).equals(model), 'the head in the repository is the model');
  });
});

describe('a head that cannot be saved', { skip }, () => {
  const { cleanup, repo, env, sock, uri } = volumeScratch('volhead', { SCRATE_TEST_VOLUME_CHECKPOINT_MS: '200' });
  let serve: RunningServe | undefined;
  after(() => {
    serve?.child.kill('SIGKILL');
    cleanup();
  });

  test('checkpoints that fail to record a head keep the log: the flushed write survives a restart', async () => {
    assert.equal(scrate(['init'], env).code, 0);
    assert.equal(scrate(['volume', 'create', 'disk', '--size', '16M'], env).code, 0);
    serve = await startServe(env, 'disk', sock, ['--write-delay', '0s']);
    await run('qemu-io', ['-f', 'raw', '-c', 'write -P 170 0 64k', '-c', 'flush', uri]);
    await new Promise((r) => setTimeout(r, 1500));
    // Records cannot be written for a while: a file where their directory was.
    const volumes = path.join(repo, 'volumes');
    fs.renameSync(volumes, `${volumes}.away`);
    fs.writeFileSync(volumes, '');
    await run('qemu-io', ['-f', 'raw', '-c', 'write -P 187 0 64k', '-c', 'flush', uri]);
    await new Promise((r) => setTimeout(r, 1500));
    assert.match(serve.output(), /volume upload failed/);
    fs.rmSync(volumes);
    fs.renameSync(`${volumes}.away`, volumes);
    serve.child.kill('SIGTERM');
    assert.equal((await serve.exited).code, 143);
    serve = await startServe(env, 'disk', sock, ['--read-only']);
    const r = await run('qemu-io', ['-r', '-f', 'raw', '-c', 'read -P 187 0 64k', uri]);
    assert.doesNotMatch(r.stdout, /fail|mismatch|verification/i);
    serve.child.kill('SIGTERM');
    await serve.exited;
    serve = undefined;
  });
});

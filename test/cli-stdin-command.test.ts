import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { assertCleanError, cliEnv, SCRATE, scrate } from './helpers/cli.js';
import { scratch } from './helpers/repo.js';

const MB = 1000 * 1000;

/** 200 MB of incompressible, reproducible bytes: AES-CTR's keystream over zeros. */
const PRODUCER = `head -c ${200 * MB} /dev/zero | openssl enc -aes-128-ctr -nosalt -K ${'1f'.repeat(16)} -iv ${'00'.repeat(16)}`;

async function sha256(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

describe('backup --stdin-from-command', () => {
  let tmp: ReturnType<typeof scratch>;
  let repo: string;
  let env: NodeJS.ProcessEnv;
  const snapshotFiles = () => fs.readdirSync(path.join(repo, 'snapshots'));
  const dump = (file: string, e = env) => execFileSync(SCRATE, ['dump', 'latest', file], { env: e, maxBuffer: 4 * MB });

  before(() => {
    tmp = scratch('stdin-command');
    repo = path.join(tmp.dir, 'repo');
    env = cliEnv(repo);
    assert.equal(scrate(['init'], env).code, 0);
  });
  after(() => tmp.cleanup());

  test('the command gets the environment without scrate\'s variables', () => {
    const e = { ...env, SCRATE_PASSWORD_COMMAND: "printf 'cli test password'", SCRATE_CACHE_ANYTHING: 'x', KEPT_VARIABLE: 'kept' };
    const r = scrate(['backup', '--stdin-from-command', '--stdin-filename', 'env.txt', '--', 'env'], e);
    assert.equal(r.code, 0, r.stderr);
    const seen = dump('/env.txt').toString().split('\n');
    assert.deepEqual(seen.filter((line) => /SCRATE_/.test(line)), []);
    assert.ok(seen.includes('KEPT_VARIABLE=kept'), seen.join('\n'));
    assert.ok(seen.includes(`PATH=${env['PATH']}`));
  });

  test('a producer that is done before the repository is open is backed up whole', () => {
    // The default key derivation: the repository takes half a second to open.
    const slow = cliEnv(path.join(tmp.dir, 'slow-repo'), { SCRATE_KDF_MS: undefined });
    assert.equal(scrate(['init'], slow).code, 0);
    assert.equal(scrate(['backup', '--stdin-from-command', '--stdin-filename', 'hello', '--', 'printf', 'hello'], slow).code, 0);
    assert.equal(dump('/hello', slow).toString(), 'hello');
    // More than the pipe holds: the producer waits for the backup to read.
    const r = scrate(['backup', '--stdin-from-command', '--stdin-filename', 'seq', '--', 'seq', '1', '100000'], slow);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(dump('/seq', slow), execFileSync('seq', ['1', '100000']));
  });

  test('a failing, unstartable or killed producer: exit 1, one line naming it, no snapshot', () => {
    const before = snapshotFiles();
    const notExecutable = path.join(tmp.dir, 'not-executable');
    fs.writeFileSync(notExecutable, 'echo never\n', { mode: 0o644 });
    const cases: [string[], RegExp][] = [
      [['sh', '-c', 'printf partial; exit 4'], /^scrate: sh failed \(exit code 4\); no snapshot was written$/m],
      [['sh', '-c', 'printf partial; kill -KILL $$'], /^scrate: sh failed \(killed by SIGKILL\); no snapshot was written$/m],
      [['sh', '-c', 'head -c 3000000 /dev/zero; kill -TERM $$'], /sh failed \(killed by SIGTERM\)/],
      [['no-such-command-here', 'arg'], /^scrate: cannot run no-such-command-here: no such file or directory$/m],
      [[notExecutable], /cannot run .*not-executable: permission denied/],
    ];
    for (const [command, message] of cases) {
      assertCleanError(scrate(['backup', '--stdin-from-command', '--', ...command], env), 1, message);
      assert.deepEqual(snapshotFiles(), before, `no snapshot from ${command.join(' ')}`);
    }
  });

  test('200 MB of output: bounded memory, restored bit-exact', async () => {
    // time(1) reports the larger peak RSS of scrate and its producer: scrate's.
    const r = spawnSync('/usr/bin/time', ['-f', 'peak RSS %M KiB', SCRATE, 'backup', '--stdin-from-command', '--stdin-filename', 'big', '--', 'sh', '-c', PRODUCER], { env, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const peakKiB = Number(/peak RSS (\d+) KiB/.exec(r.stderr)![1]);
    assert.ok(peakKiB < 160 * 1024, `peak RSS ${peakKiB} KiB for 200 MB of output`);
    const target = path.join(tmp.dir, 'restored');
    assert.equal(scrate(['restore', 'latest', '--target', target], env).code, 0);
    const restored = path.join(target, 'big');
    assert.equal(fs.statSync(restored).size, 200 * MB);
    assert.equal(await sha256(fs.createReadStream(restored)), await sha256(spawn('sh', ['-c', PRODUCER], { stdio: ['ignore', 'pipe', 'inherit'] }).stdout));
  });
});

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LocalBackend } from '../src/backend/local.js';
import { Repository } from '../src/repository/repository.js';
import { saveLock } from '../src/repository/lock.js';
import { assertCleanError, cliEnv, jsonLines, jsonMessage, SCRATE, scrate, scrateAsync } from './helpers/cli.js';
import { scratch } from './helpers/repo.js';

const asRoot = process.getuid?.() === 0;

describe('scrate CLI', () => {
  let tmp: ReturnType<typeof scratch>;
  let repo: string;
  let src: string;
  let env: NodeJS.ProcessEnv;

  before(() => {
    tmp = scratch('cli');
    repo = path.join(tmp.dir, 'repo');
    src = path.join(tmp.dir, 'src');
    fs.mkdirSync(path.join(src, 'docs'), { recursive: true });
    fs.writeFileSync(path.join(src, 'docs/readme.txt'), 'read me\n');
    fs.writeFileSync(path.join(src, 'data.bin'), randomBytes(3 * 1024 * 1024));
    fs.symlinkSync('docs/readme.txt', path.join(src, 'link'));
    env = cliEnv(repo);
  });
  after(() => tmp.cleanup());

  test('a missing repository is exit code 10', () => {
    assertCleanError(scrate(['snapshots'], env), 10, /does not exist.*scrate init/);
  });

  test('init, then init again refuses', () => {
    const r = scrate(['init', '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(JSON.parse(r.stdout).id, /^[0-9a-f]{64}$/);
    assertCleanError(scrate(['init'], env), 1, /already exists/);
  });

  test('backup, snapshots, ls and restore', () => {
    const b = scrate(['backup', src, '--tag', 'nightly', '--json'], env);
    assert.equal(b.code, 0, b.stderr);
    const summary = jsonMessage<{ full_snapshot_id: string; snapshot_id: string; files_new: number }>(b.stdout, 'summary');
    assert.match(summary.full_snapshot_id, /^[0-9a-f]{64}$/);
    assert.equal(summary.snapshot_id, summary.full_snapshot_id.slice(0, 8));
    assert.equal(summary.files_new, 2);

    const list = JSON.parse(scrate(['snapshots', '--json'], env).stdout);
    assert.equal(list.length, 1);
    assert.deepEqual(list[0].tags, ['nightly']);
    assert.deepEqual(list[0].paths, [src]);
    assert.match(scrate(['snapshots'], env).stdout, new RegExp(summary.snapshot_id));

    const ls = scrate(['ls', 'latest', src], env).stdout.trim().split('\n');
    assert.deepEqual(ls, [src, `${src}/data.bin`, `${src}/docs`, `${src}/docs/readme.txt`, `${src}/link`]);
    assert.match(scrate(['ls', '-l', summary.full_snapshot_id.slice(0, 10), `${src}/link`], env).stdout, /^lrwxrwxrwx .* -> docs\/readme.txt$/m);

    const target = path.join(tmp.dir, 'restored');
    const r = scrate(['restore', `latest:${src}`, '--target', target], env);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(fs.readFileSync(path.join(target, 'data.bin')), fs.readFileSync(path.join(src, 'data.bin')));
    assert.equal(fs.readlinkSync(path.join(target, 'link')), 'docs/readme.txt');
    assertCleanError(scrate(['restore', `latest:${src}`, '--target', target], env), 1, /refusing to overwrite/);
  });

  test('latest honours --tag, --host and --path; unknown IDs are a clean error', () => {
    assert.equal(scrate(['ls', 'latest', '--tag', 'nightly'], env).code, 0);
    assertCleanError(scrate(['ls', 'latest', '--tag', 'weekly'], env), 1, /no snapshot/);
    assertCleanError(scrate(['ls', 'latest', '--host', 'elsewhere'], env), 1, /no snapshot/);
    assertCleanError(scrate(['ls', 'deadbeef'], env), 1, /no snapshot/);
  });

  test('a wrong password is exit code 12', () => {
    assertCleanError(scrate(['snapshots'], { ...env, SCRATE_PASSWORD: 'not it' }), 12, /wrong password/);
  });

  test('passwords from a file and from a command; none and no terminal is an error', () => {
    const file = path.join(tmp.dir, 'pw');
    fs.writeFileSync(file, 'cli test password\n');
    const noEnv = { ...env, SCRATE_PASSWORD: undefined };
    delete noEnv['SCRATE_PASSWORD'];
    assert.equal(scrate(['--password-file', file, 'snapshots'], noEnv).code, 0);
    assert.equal(scrate(['snapshots'], { ...noEnv, SCRATE_PASSWORD_FILE: file }).code, 0);
    assert.equal(scrate(['--password-command', `cat ${file}`, 'snapshots'], noEnv).code, 0);
    assertCleanError(scrate(['--password-command', 'exit 3', 'snapshots'], noEnv), 1, /password command failed/);
    assertCleanError(scrate(['snapshots'], noEnv), 1, /no password given/);
  });

  test('bad arguments are exit code 1 without a stack trace', () => {
    const r = scrate(['restore'], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /missing required argument/);
    assert.doesNotMatch(r.stderr, /^\s+at /m);
    assertCleanError(scrate(['backup'], env), 1, /nothing to back up/);
    assertCleanError(scrate(['backup', '--chunker', 'weird', src], env), 1, /Allowed choices are fixed, cdc/);
    assertCleanError(scrate(['backup', path.join(tmp.dir, 'nope')], env), 1, /cannot back up .*no such file/);
    assertCleanError(scrate(['restore', 'latest'], env), 1, /no target/);
  });

  test('--exclude and --exclude-file leave paths out', () => {
    const file = path.join(tmp.dir, 'excludes');
    fs.writeFileSync(file, '# build output\n*.bin\n\n');
    const r = scrate(['backup', src, '--exclude-file', file, '--exclude', `${src}/docs`, '--tag', 'excl'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(scrate(['ls', 'latest', '--tag', 'excl', src], env).stdout.trim().split('\n'), [src, `${src}/link`]);
    assertCleanError(scrate(['backup', src, '--exclude-file', path.join(tmp.dir, 'none')], env), 1, /cannot read exclude file/);
  });

  test('--quiet prints nothing on success', () => {
    fs.writeFileSync(path.join(src, 'quiet'), 'q');
    const r = scrate(['-q', 'backup', src], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, '');
  });

  test('check passes on a healthy repository', () => {
    const r = scrate(['check', '--read-data'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /0 error\(s\)/);
  });

  test('cat shows decrypted objects as JSON', () => {
    assert.equal(JSON.parse(scrate(['cat', 'config'], env).stdout).chunker.avg, 1024 * 1024);
    const sn = JSON.parse(scrate(['cat', 'snapshot', 'latest'], env).stdout);
    assert.deepEqual(sn.paths, [src]);
    // Backups that stored no new file data have index files with tree packs only.
    const packs = fs.readdirSync(path.join(repo, 'index')).flatMap((name) => JSON.parse(scrate(['cat', 'index', name.slice(0, 8)], env).stdout).packs);
    assert.ok(packs.some((p: { type: string }) => p.type === 'tree'));
    const dataPack = packs.find((p: { type: string }) => p.type === 'data');
    const pack = JSON.parse(scrate(['cat', 'pack', dataPack.id], env).stdout);
    assert.deepEqual(pack.blobs, dataPack.blobs, 'pack header agrees with the index');
    const tree = JSON.parse(scrate(['cat', 'tree', sn.tree], env).stdout);
    assert.equal(tree.nodes[0].name, 'tmp');
    assertCleanError(scrate(['cat', 'nonsense'], env), 1, /unknown object type/);
  });

  test('key add, list, passwd and remove', () => {
    const newPw = path.join(tmp.dir, 'new-pw');
    fs.writeFileSync(newPw, 'second password');
    assert.equal(scrate(['key', 'add', '--new-password-file', newPw], env).code, 0);
    const keys = JSON.parse(scrate(['key', 'list', '--json'], env).stdout);
    assert.equal(keys.length, 2);
    const second = { ...env, SCRATE_PASSWORD: 'second password' };
    assert.equal(scrate(['snapshots'], second).code, 0);

    // The key in use and the last key cannot be removed.
    const current = keys.find((k: { current: boolean }) => k.current).id;
    const other = keys.find((k: { current: boolean }) => !k.current).id;
    assertCleanError(scrate(['key', 'remove', current.slice(0, 8)], env), 1, /key in use/);

    fs.writeFileSync(newPw, 'third password');
    const p = JSON.parse(scrate(['key', 'passwd', '--new-password-file', newPw, '--json'], second).stdout);
    assert.equal(p.removed, other);
    assertCleanError(scrate(['snapshots'], second), 12, /wrong password/);
    const third = { ...env, SCRATE_PASSWORD: 'third password' };
    assert.equal(scrate(['snapshots'], third).code, 0);
    assert.equal(scrate(['key', 'remove', current], third).code, 0);
    assertCleanError(scrate(['snapshots'], env), 12, /wrong password/);
    const last = JSON.parse(scrate(['key', 'list', '--json'], third).stdout);
    assert.equal(last.length, 1);
    env = third;
  });

  test('a live exclusive lock blocks with exit 11; unlock removes stale locks only', async () => {
    const r = await Repository.open(new LocalBackend(repo), 'third password');
    const live = await saveLock(r, true, process.pid);
    assertCleanError(scrate(['backup', src], env), 11, /locked exclusively by pid/);
    assert.match(scrate(['unlock'], env).stdout, /no locks to remove/);
    assert.match(scrate(['unlock', '--remove-all'], env).stdout, /removed 1 lock/);
    assert.ok(!fs.existsSync(path.join(repo, 'locks', live)));

    // A lock whose process is gone does not block anything.
    await saveLock(r, true, 2 ** 22 + 12345);
    assert.equal(scrate(['backup', src], env).code, 0);
    assert.match(scrate(['unlock'], env).stdout, /removed 1 lock/);
    assert.deepEqual(fs.readdirSync(path.join(repo, 'locks')), []);
  });

  test('an unreadable file: the snapshot is written without it, exit code 3', () => {
    // Root reads everything: as root the run gives up every capability (still uid 0, so it
    // reaches the checkout wherever it lies, and the repository it makes), so the file's mode rules.
    const dir = path.join(tmp.dir, 'unreadable');
    fs.mkdirSync(dir);
    const repo2 = path.join(dir, 'repo');
    const src2 = path.join(dir, 'src');
    fs.mkdirSync(src2);
    fs.writeFileSync(path.join(src2, 'ok'), 'fine');
    fs.writeFileSync(path.join(src2, 'secret'), 'hidden');
    fs.chmodSync(path.join(src2, 'secret'), 0o000);
    const run = (args: string[], env: NodeJS.ProcessEnv) => {
      if (!asRoot) return scrate(args, env);
      const r = spawnSync('setpriv', ['--bounding-set=-all', '--inh-caps=-all', '--', SCRATE, ...args], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      if (r.error) throw r.error;
      return { code: r.status ?? 130, stdout: r.stdout, stderr: r.stderr };
    };
    const e = cliEnv(repo2);
    assert.equal(run(['init'], e).code, 0);
    const r = run(['backup', src2, '--json'], e);
    assert.equal(r.code, 3, r.stderr);
    const [error, exit] = jsonLines(r.stderr);
    assert.deepEqual(error, { message_type: 'error', error: { message: 'permission denied' }, during: 'archival', item: path.join(src2, 'secret') });
    assert.deepEqual(exit, { message_type: 'exit_error', code: 3, message: 'warning: 1 source(s) could not be read; the snapshot is incomplete' });
    assert.equal(jsonMessage<{ error_count: number }>(r.stdout, 'summary').error_count, 1);
    const ls = run(['ls', 'latest', src2], e).stdout;
    assert.match(ls, /\/ok$/m);
    assert.doesNotMatch(ls, /secret/);
  });

  test('Ctrl-C stops a backup: exit 130, no snapshot, no lock, the repository still works', async () => {
    const big = path.join(tmp.dir, 'big');
    fs.mkdirSync(big);
    for (let i = 0; i < 8; i++) fs.writeFileSync(path.join(big, `part${i}`), randomBytes(64 * 1024 * 1024));
    const before = JSON.parse(scrate(['snapshots', '--json'], env).stdout).length;
    const child = scrateAsync(['backup', big], env);
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // Once its lock is there the backup is under way, with 512 MiB to go: a fixed delay was
    // outrun once the backup got fast enough to finish within it.
    const locks = path.join(repo, 'locks');
    while (fs.readdirSync(locks).length === 0) await new Promise((r) => setTimeout(r, 5));
    child.kill('SIGINT');
    const code = await new Promise<number>((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig ? 128 + 2 : 1))));
    assert.equal(code, 130, stderr);
    assert.match(stderr, /interrupted/);
    assert.equal(JSON.parse(scrate(['snapshots', '--json'], env).stdout).length, before);
    assert.deepEqual(fs.readdirSync(path.join(repo, 'locks')), []);
    const again = scrate(['backup', src], env);
    assert.equal(again.code, 0, again.stderr);
    const target = path.join(tmp.dir, 'after-interrupt');
    assert.equal(scrate(['restore', `latest:${src}`, '--target', target], env).code, 0);
    assert.deepEqual(fs.readFileSync(path.join(target, 'data.bin')), fs.readFileSync(path.join(src, 'data.bin')));
  });
});

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { sha256 } from '../src/crypto/primitives.js';
import { posix } from '../src/native/posix.js';
import { makedev } from './helpers/tree.js';
import { assertCleanError, cliEnv, jsonMessage, scrate } from './helpers/cli.js';
import { listObjects, scratch } from './helpers/repo.js';

const MiB = 1024 * 1024;
const S_IFCHR = 0o020000;

/** Writes a key file planted by someone who can write to the bucket; returns its name. */
function plantKeyFile(repo: string, bytes: Buffer): string {
  const name = sha256(bytes).toString('hex');
  fs.writeFileSync(path.join(repo, 'keys', name), bytes);
  return name;
}

describe('a write-only backup host, through the CLI', () => {
  let tmp: ReturnType<typeof scratch>;
  let repo: string;
  let fullEnv: NodeJS.ProcessEnv;
  let hostEnv: NodeJS.ProcessEnv;
  const secretName = 'quarterly-layoffs-plan';
  /** Host names long enough never to turn up by chance in encrypted bytes. */
  const HOST = 'web-frontend-01';
  let secretSnapshot: { id: string; time: string };

  before(() => {
    tmp = scratch('cli-security');
    repo = path.join(tmp.dir, 'repo');
    fullEnv = cliEnv(repo, { XDG_CACHE_HOME: path.join(tmp.dir, 'cache-full') });
    // The backup host has a cache (its record) of its own.
    hostEnv = cliEnv(repo, { SCRATE_PASSWORD: 'host password', XDG_CACHE_HOME: path.join(tmp.dir, 'cache-host') });
    const secret = path.join(tmp.dir, 'hr', secretName);
    fs.mkdirSync(secret, { recursive: true });
    fs.writeFileSync(path.join(secret, 'names.csv'), randomBytes(12_345));
    const web = path.join(tmp.dir, 'srv');
    fs.mkdirSync(web);
    fs.writeFileSync(path.join(web, 'index.html'), '<h1>hello</h1>\n');
    fs.writeFileSync(path.join(web, 'blob.bin'), randomBytes(2 * MiB));
    fs.writeFileSync(path.join(web, 'suid'), '#!/bin/sh\n');
    fs.chmodSync(path.join(web, 'suid'), 0o4755);
    posix.mknod(Buffer.from(path.join(web, 'null')), S_IFCHR | 0o666, makedev(1, 3));
  });
  after(() => tmp.cleanup());

  test('a full key makes a write-only key for web1', () => {
    assert.equal(scrate(['init'], fullEnv).code, 0);
    const b = scrate(['backup', '--host', 'hr-server-alpha', path.join(tmp.dir, 'hr'), '--json'], fullEnv);
    assert.equal(b.code, 0, b.stderr);
    const list = JSON.parse(scrate(['snapshots', '--json'], fullEnv).stdout);
    secretSnapshot = { id: list[0].id, time: list[0].time };
    fs.writeFileSync(path.join(tmp.dir, 'wo.pass'), 'host password\n');
    const k = scrate(['key', 'add', '--write-only', '--host', HOST, '--new-password-file', path.join(tmp.dir, 'wo.pass'), '--json'], fullEnv);
    assert.equal(k.code, 0, k.stderr);
    assert.equal(JSON.parse(k.stdout).access, 'write-only');
  });

  test('the host backs up incrementally, lists only its own snapshots, and can read nothing', () => {
    const first = scrate(['backup', '--host', HOST, path.join(tmp.dir, 'srv'), '--json'], hostEnv);
    assert.equal(first.code, 0, first.stderr);
    const second = jsonMessage<{ data_blobs: number; files_unmodified: number }>(scrate(['backup', '--host', HOST, path.join(tmp.dir, 'srv'), '--json'], hostEnv).stdout, 'summary');
    assert.equal(second.data_blobs, 0);
    assert.equal(second.files_unmodified, 3);
    const outputs: string[] = [];
    const run = (args: string[]) => {
      const r = scrate(args, hostEnv);
      outputs.push(r.stdout, r.stderr);
      return r;
    };
    const mine = JSON.parse(run(['snapshots', '--json']).stdout);
    assert.equal(mine.length, 2);
    run(['snapshots']);
    const target = path.join(tmp.dir, 'stolen');
    for (const args of [
      ['restore', 'latest', '--target', target],
      ['restore', secretSnapshot.id, '--target', target],
      ['ls', 'latest'],
      ['ls', secretSnapshot.id.slice(0, 8)],
      ['dump', secretSnapshot.id, `/${secretName}/names.csv`],
      ['cat', 'snapshot', secretSnapshot.id],
      ['cat', 'index', listObjects(repo).find((o) => o.startsWith('index/'))!.slice(6)],
      ['cat', 'keys'],
      ['check'],
      ['key', 'list'],
      ['key', 'add', '--new-password-file', path.join(tmp.dir, 'wo.pass')],
      ['key', 'remove', 'ab'],
      ['unlock', '--remove-all'],
    ]) {
      assertCleanError(run(args), 1, /write-only/);
    }
    assert.ok(!fs.existsSync(target), 'nothing written');
    const all = outputs.join('\n');
    for (const leak of [secretName, 'names.csv', '12345', '12.1 KiB', secretSnapshot.id.slice(0, 8), secretSnapshot.time.slice(0, 19), secretSnapshot.time.replace('T', ' ').slice(0, 19)]) {
      assert.ok(!all.includes(leak), `the host's output shows ${leak}`);
    }
  });

  test('the full key sees the host\'s snapshots, marked with their writer, and restores them exactly', () => {
    const list = scrate(['snapshots'], fullEnv);
    assert.match(list.stdout, /web-frontend-01 \([0-9a-f]{8}\)/);
    const target = path.join(tmp.dir, 'restored');
    const r = scrate(['restore', 'latest', '--host', HOST, '--path', path.join(tmp.dir, 'srv'), '--target', target], fullEnv);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(fs.readFileSync(path.join(target, tmp.dir, 'srv', 'blob.bin')), fs.readFileSync(path.join(tmp.dir, 'srv', 'blob.bin')));
    const c = scrate(['check', '--read-data'], fullEnv);
    assert.equal(c.code, 0, c.stdout + c.stderr);
  });

  test('setuid bits and device nodes of the host\'s snapshots are restored only with --allow-privileged', () => {
    const restoreTo = (target: string, ...flags: string[]) => scrate(['restore', 'latest', '--host', HOST, '--target', target, ...flags], fullEnv);
    const plain = path.join(tmp.dir, 'unprivileged');
    const r = restoreTo(plain);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /setuid/);
    assert.equal(fs.statSync(path.join(plain, tmp.dir, 'srv', 'suid')).mode & 0o7777, 0o755);
    assert.ok(!fs.existsSync(path.join(plain, tmp.dir, 'srv', 'null')), 'the device node is skipped');
    const allowed = path.join(tmp.dir, 'privileged');
    assert.equal(restoreTo(allowed, '--allow-privileged').code, 0);
    assert.equal(fs.statSync(path.join(allowed, tmp.dir, 'srv', 'suid')).mode & 0o7777, 0o4755);
    assert.ok(fs.statSync(path.join(allowed, tmp.dir, 'srv', 'null')).isCharacterDevice());
  });

  test('nothing a bucket holds names a file, a host or a user', () => {
    const markers = [secretName, 'names.csv', 'index.html', HOST, 'hr-server-alpha', '"hostname"', '"username"', '"paths"', '"nodes"'];
    for (const object of listObjects(repo).filter((o) => o !== 'config')) {
      const bytes = fs.readFileSync(path.join(repo, object));
      for (const m of markers) assert.equal(bytes.indexOf(m), -1, `${object} holds ${m}`);
    }
  });

  test('planted key files are skipped with a warning, quickly, and the real keys still open', () => {
    const good = JSON.parse(fs.readFileSync(path.join(repo, 'keys', fs.readdirSync(path.join(repo, 'keys'))[0]!), 'utf8'));
    const planted = [
      { ...good, kdf: { ...good.kdf, p: 400 } },
      { ...good, kdf: { ...good.kdf, N: 2 ** 24 } },
      { ...good, kdf: { ...good.kdf, N: '32768' } },
      { ...good, nonce: 'AAAA' },
      { ...good, data: 12 },
      { ...good, created: { not: 'a date' } },
      { ...good, version: 'three' },
      [],
      'null',
    ].map((k) => plantKeyFile(repo, Buffer.from(typeof k === 'string' ? k : JSON.stringify(k))));
    planted.push(plantKeyFile(repo, Buffer.from('{"not json')), plantKeyFile(repo, Buffer.alloc(1024 * 1024, 0x20)));
    try {
      const started = Date.now();
      const r = scrate(['snapshots'], fullEnv);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
      for (const name of planted) assert.match(r.stderr, new RegExp(`^warning: key ${name.slice(0, 8)} skipped: .+$`, 'm'));
      assert.doesNotMatch(r.stderr, /^\s+at /m);
      // A wrong password is still a wrong password (after the same warnings), not a crash or a stall.
      const wrong = scrate(['snapshots'], { ...fullEnv, SCRATE_PASSWORD: 'nope' });
      assert.equal(wrong.code, 12);
      assert.match(wrong.stderr.trim().split('\n').at(-1)!, /^scrate: wrong password/);
      assert.doesNotMatch(wrong.stderr, /^\s+at /m);
    } finally {
      for (const name of planted) fs.rmSync(path.join(repo, 'keys', name));
    }
  });

  test('a replaced or altered config is refused with a clear error', () => {
    const config = path.join(repo, 'config');
    const original = fs.readFileSync(config);
    const stored = JSON.parse(original.toString());
    // Altered: same admin key, another chunker.
    fs.writeFileSync(config, JSON.stringify({ ...stored, chunker: { ...stored.chunker, avg: 2 * stored.chunker.avg } }));
    assertCleanError(scrate(['snapshots'], fullEnv), 1, /config: not signed by this repository/);
    // Replaced: another repository's config, signed by its own admin key. A machine that opened
    // the repository before knows its admin key; one that never did finds no key file it signed.
    const other = path.join(tmp.dir, 'other');
    assert.equal(scrate(['init'], cliEnv(other)).code, 0);
    fs.copyFileSync(path.join(other, 'config'), config);
    assertCleanError(scrate(['snapshots'], fullEnv), 1, /config: signed by another admin key than when this machine last opened the repository: replaced\?/);
    assertCleanError(scrate(['snapshots'], { ...fullEnv, XDG_CACHE_HOME: path.join(tmp.dir, 'new-machine') }), 1, /no key file .* is signed by its config's admin key/);
    fs.writeFileSync(config, '{"version": 3}');
    assertCleanError(scrate(["snapshots"], fullEnv), 1, /config: malformed/);
    fs.writeFileSync(config, original);
    assertCleanError(scrate(['init'], fullEnv), 1, /already exists/);
    assert.equal(scrate(['snapshots'], fullEnv).code, 0);
  });
});

describe('a repository of format version 2', () => {
  let tmp: ReturnType<typeof scratch>;
  let repo: string;
  let env: NodeJS.ProcessEnv;
  const fixture = fileURLToPath(new URL('../../test/fixtures/v2-repo', import.meta.url));
  const hash = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

  before(() => {
    tmp = scratch('v2');
    repo = path.join(tmp.dir, 'repo');
    fs.cpSync(fixture, repo, { recursive: true });
    fs.rmSync(path.join(repo, 'README.md'));
    env = cliEnv(repo, { SCRATE_PASSWORD: 'v2 fixture password', XDG_CACHE_HOME: path.join(tmp.dir, 'cache') });
  });
  after(() => tmp.cleanup());

  test('opens read-only: snapshots, ls, dump, restore and check read it exactly; nothing is written to it', () => {
    const before = listObjects(repo);
    const list = JSON.parse(scrate(['snapshots', '--json'], env).stdout);
    assert.deepEqual(list.map((s: { id: string }) => s.id.slice(0, 8)).sort(), ['173cddce', '812fbcd6']);
    assert.match(scrate(['ls', '812fbcd6'], env).stdout, /\/tmp\/v2fix\/src\/docs\/readme.txt/);
    const target = path.join(tmp.dir, 'out');
    const r = scrate(['restore', '173cddce', '--target', target], env);
    assert.equal(r.code, 0, r.stderr);
    const src = path.join(target, 'tmp/v2fix/src');
    assert.equal(hash(path.join(src, 'bin/random.bin')), '66e3d29fce6c9327720681acd2924b0fa2e56f3fa7a52efd8cbba82a54477c7e');
    assert.equal(hash(path.join(src, 'docs/numbers.txt')), '34045a61e57f60a789ddfb21ac80e69d7aec40061c7bc55ecb068acb3f7f2838');
    assert.equal(fs.readFileSync(path.join(src, 'docs/readme.txt'), 'utf8'), 'hello v2\n');
    assert.equal(fs.statSync(path.join(src, 'docs/readme.txt')).mtime.toISOString(), '2026-01-02T03:04:05.000Z');
    assert.equal(fs.readlinkSync(path.join(src, 'link')), 'docs/readme.txt');
    const dump = scrate(['dump', '812fbcd6', '/tmp/v2fix/src/docs/numbers.txt'], env);
    assert.equal(dump.stdout, Array.from({ length: 20000 }, (_, i) => `${i + 1}\n`).join(''));
    const c = scrate(['check', '--read-data'], env);
    assert.equal(c.code, 0, c.stdout + c.stderr);
    assert.match(c.stdout, /2 snapshots/);
    assert.deepEqual(listObjects(repo), before, 'no lock, no object written');
  });

  test('writing to it is refused with a clear message', () => {
    const before = listObjects(repo);
    assertCleanError(scrate(['backup', path.join(tmp.dir)], env), 1, /format version 2, which scrate only reads/);
    fs.writeFileSync(path.join(tmp.dir, 'new.pass'), 'another password');
    assertCleanError(scrate(['key', 'add', '--new-password-file', path.join(tmp.dir, 'new.pass')], env), 1, /format version 2, which scrate only reads/);
    assertCleanError(scrate(['snapshots'], { ...env, SCRATE_PASSWORD: 'wrong' }), 12, /wrong password/);
    assert.deepEqual(listObjects(repo), before);
  });
});

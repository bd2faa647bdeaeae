import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LocalBackend } from '../src/backend/local.js';
import { decodeAccess, encodeAccess, fullKeys, writerKeys } from '../src/crypto/access.js';
import { ExitCode, IntegrityError, ScrateError } from '../src/errors.js';
import { addKey } from '../src/repository/keys.js';
import { BlobType } from '../src/repository/pack.js';
import { Repository } from '../src/repository/repository.js';
import { loadSnapshot } from '../src/snapshot/snapshot.js';
import { findNode } from '../src/tree/walk.js';
import { assertCleanError, backupSnapshotId, cliEnv, scrate } from './helpers/cli.js';
import { initRepo, PASSWORD, scratch, TEST_KDF_MS } from './helpers/repo.js';

/*
 * init --from-repo SRC --copy-chunker-params (design note of issue #24, F1): the new repository
 * takes SRC's chunk sizes and both key roots, so the same file is the same chunks under the same
 * blob IDs in both, while everything that reads, signs or locks stays its own.
 */

const SIZES = ['--chunk-min', '4096', '--chunk-avg', '16384', '--chunk-max', '65536'];
const SOURCE_PW = 'source password';
const TARGET_PW = 'target password';

/** Opens a local repository with `password`, its index loaded. */
async function open(dir: string, password: string): Promise<Repository> {
  const repo = await Repository.open(new LocalBackend(dir), password);
  await repo.loadIndex();
  return repo;
}

/** The file's chunks in a snapshot: blob IDs and their lengths (the cut points). */
async function chunksOf(dir: string, password: string, snapshotId: string, file: string): Promise<{ ids: string[]; lengths: number[] }> {
  const repo = await open(dir, password);
  const { snapshot, writer } = await loadSnapshot(repo, snapshotId);
  const node = await findNode(repo.reader(writer), Buffer.from(snapshot.tree, 'hex'), file);
  const content = node!.content!;
  return { ids: content.map((id) => id.toString('hex')), lengths: content.map((id) => repo.index.find(BlobType.data, id, writer.no)!.rawLength) };
}

describe('init --from-repo --copy-chunker-params', () => {
  let tmp: ReturnType<typeof scratch>;
  let file: string;
  const dir = (name: string) => path.join(tmp.dir, name);
  /** The environment of a command on `repo` (password TARGET_PW) whose --from-repo is A's. */
  const env = (repo: string, extra: Record<string, string | undefined> = {}) => cliEnv(repo, { SCRATE_PASSWORD: TARGET_PW, SCRATE_FROM_PASSWORD: SOURCE_PW, XDG_CACHE_HOME: dir('cache'), ...extra });

  before(() => {
    tmp = scratch('from-repo');
    file = dir('data.bin');
    fs.writeFileSync(file, randomBytes(1024 * 1024));
    assert.equal(scrate(['init', ...SIZES], env(dir('A'), { SCRATE_PASSWORD: SOURCE_PW })).code, 0);
    const made = scrate(['init', '--from-repo', dir('A'), '--copy-chunker-params'], env(dir('B')));
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stderr + made.stdout, /chunker parameters and blob-ID keys of repository/);
    // The control: a repository of the same sizes made on its own.
    assert.equal(scrate(['init', ...SIZES], env(dir('C'))).code, 0);
  });
  after(() => tmp.cleanup());

  test('the same file gives the same chunks under the same blob IDs in both; a repository of the same sizes made alone does not', async () => {
    const backed = (repo: string, password: string) => {
      const r = scrate(['backup', '--json', file], env(repo, { SCRATE_PASSWORD: password }));
      assert.equal(r.code, 0, r.stderr);
      return chunksOf(repo, password, backupSnapshotId(r.stdout), file);
    };
    const a = await backed(dir('A'), SOURCE_PW);
    const b = await backed(dir('B'), TARGET_PW);
    const c = await backed(dir('C'), TARGET_PW);
    assert.ok(a.ids.length >= 20, `${a.ids.length} chunks: the sizes were A's`);
    assert.deepEqual(b, a);
    assert.notDeepEqual(c.lengths, a.lengths, 'other keys cut elsewhere');
    assert.deepEqual(c.ids.filter((id) => a.ids.includes(id)), [], 'other keys name blobs otherwise');
    const found = scrate(['find', '--blob', '--json', a.ids[7]!], env(dir('B')));
    assert.equal(found.code, 0, found.stderr);
    assert.match(found.stdout, /data\.bin/);
  });

  test('the new repository has its own id, seal, admin and lock keys, and neither key opens the other', async () => {
    const a = await open(dir('A'), SOURCE_PW);
    const b = await open(dir('B'), TARGET_PW);
    assert.equal(b.config.roots, 'imported');
    assert.equal(a.config.roots, undefined);
    assert.deepEqual(b.config.chunker, a.config.chunker);
    assert.notEqual(b.config.id, a.config.id);
    for (const k of ['sealPublic', 'adminPublic', 'lockKey'] as const) assert.ok(!b.keys[k].equals(a.keys[k]), k);
    assert.ok(!b.keys.read!.master.equals(a.keys.read!.master));
    assert.ok(b.keys.read!.idRoot.equals(a.keys.read!.idRoot) && b.keys.read!.chunkerRoot.equals(a.keys.read!.chunkerRoot));
    // Each key file planted in (a copy of) the other repository: never signed by its admin key, never tried.
    for (const [from, to, password] of [['B', 'A', TARGET_PW], ['A', 'B', SOURCE_PW]] as const) {
      const planted = dir(`${to}-planted`);
      fs.cpSync(dir(to), planted, { recursive: true });
      for (const name of fs.readdirSync(path.join(dir(from), 'keys'))) fs.copyFileSync(path.join(dir(from), 'keys', name), path.join(planted, 'keys', name));
      await assert.rejects(Repository.open(new LocalBackend(planted), password), (err: ScrateError) => err.exitCode === ExitCode.wrongPassword);
    }
  });

  test('a full key added later carries the roots; a write-only key derives its writer keys from them', async () => {
    const pw = (name: string, text: string) => (fs.writeFileSync(dir(name), text), dir(name));
    assert.equal(scrate(['key', 'add', '--new-password-file', pw('second.pw', 'second full')], env(dir('B'))).code, 0);
    assert.equal(scrate(['key', 'add', '--write-only', '--host', 'web1', '--new-password-file', pw('wo.pw', 'write only')], env(dir('B'))).code, 0);
    const a = await open(dir('A'), SOURCE_PW);
    const second = await Repository.open(new LocalBackend(dir('B')), 'second full');
    assert.ok(second.keys.read!.rootsImported);
    assert.ok(second.keys.writer.chunkIdKey.equals(a.keys.writer.chunkIdKey) && second.keys.writer.chunkerKey.equals(a.keys.writer.chunkerKey));
    const wo = await Repository.open(new LocalBackend(dir('B')), 'write only');
    assert.equal(wo.keys.access, 'write-only');
    const expected = writerKeys(a.keys.read!, wo.keys.writer.id);
    assert.ok(wo.keys.writer.chunkIdKey.equals(expected.chunkIdKey) && wo.keys.writer.chunkerKey.equals(expected.chunkerKey));
  });

  test('a write-only key of the source is refused in one line, and no repository is made', () => {
    fs.writeFileSync(dir('a-wo.pw'), 'source write only');
    assert.equal(scrate(['key', 'add', '--write-only', '--host', 'web2', '--new-password-file', dir('a-wo.pw')], env(dir('A'), { SCRATE_PASSWORD: SOURCE_PW })).code, 0);
    const r = scrate(['init', '--from-repo', dir('A'), '--copy-chunker-params', '--from-password-file', dir('a-wo.pw')], env(dir('D'), { SCRATE_FROM_PASSWORD: undefined }));
    assertCleanError(r, 1, /write-only: copying its chunker parameters needs a full key/);
    assert.ok(!fs.existsSync(dir('D')));
  });

  test('--from-repo is refused without --copy-chunker-params and the reverse; SCRATE_FROM_REPOSITORY alone changes nothing', async () => {
    assertCleanError(scrate(['init', '--from-repo', dir('A')], env(dir('E'))), 1, /--from-repo is only for --copy-chunker-params/);
    assertCleanError(scrate(['init', '--copy-chunker-params'], env(dir('E'))), 1, /--copy-chunker-params needs the repository to copy them from/);
    assertCleanError(scrate(['init', '--from-repo', dir('A'), '--copy-chunker-params', '--chunk-avg', '8192'], env(dir('E'))), 1, /--chunk-avg contradicts --copy-chunker-params/);
    assert.ok(!fs.existsSync(dir('E')));
    assert.equal(scrate(['init'], env(dir('E'), { SCRATE_FROM_REPOSITORY: dir('A') })).code, 0);
    const e = await open(dir('E'), TARGET_PW);
    assert.equal(e.config.roots, undefined);
    assert.ok(!e.keys.read!.rootsImported);
  });

  test('the source password comes from its own options and variables, never from the target\'s', async () => {
    // SCRATE_PASSWORD is the source's here too: still not used for it.
    const noFrom = scrate(['init', '--from-repo', dir('A'), '--copy-chunker-params'], env(dir('F'), { SCRATE_PASSWORD: SOURCE_PW, SCRATE_FROM_PASSWORD: undefined }));
    assertCleanError(noFrom, 1, /no password given \(use --from-password-file, --from-password-command or SCRATE_FROM_PASSWORD/);
    const wrong = scrate(['init', '--from-repo', dir('A'), '--copy-chunker-params'], env(dir('F'), { SCRATE_FROM_PASSWORD: 'not it' }));
    assert.equal(wrong.code, ExitCode.wrongPassword, wrong.stderr);
    assert.ok(!fs.existsSync(dir('F')));
    const byCommand = scrate(['init', '--from-repo', dir('A'), '--copy-chunker-params', '--from-password-command', `echo '${SOURCE_PW}'`], env(dir('F'), { SCRATE_FROM_PASSWORD: undefined }));
    assert.equal(byCommand.code, 0, byCommand.stderr);
    const byVariables = scrate(['init', '--copy-chunker-params'], env(dir('G'), { SCRATE_FROM_REPOSITORY: dir('A'), SCRATE_FROM_PASSWORD: undefined, SCRATE_FROM_PASSWORD_FILE: dir('source.pw') }));
    assert.equal(byVariables.code, 1, 'the file does not exist yet');
    fs.writeFileSync(dir('source.pw'), `${SOURCE_PW}\n`);
    assert.equal(scrate(['init', '--copy-chunker-params'], env(dir('G'), { SCRATE_FROM_REPOSITORY: dir('A'), SCRATE_FROM_PASSWORD: undefined, SCRATE_FROM_PASSWORD_FILE: dir('source.pw') })).code, 0);
    // A source with the empty password, said with the source's own option.
    assert.equal(scrate(['init', '--insecure-no-password'], env(dir('N'), { SCRATE_PASSWORD: undefined })).code, 0);
    const contradicted = scrate(['init', '--from-repo', dir('N'), '--copy-chunker-params', '--from-insecure-no-password'], env(dir('H')));
    assertCleanError(contradicted, 1, /--from-insecure-no-password contradicts the password from SCRATE_FROM_PASSWORD/);
    assert.equal(scrate(['init', '--from-repo', dir('N'), '--copy-chunker-params', '--from-insecure-no-password'], env(dir('H'), { SCRATE_FROM_PASSWORD: undefined })).code, 0);
    assert.ok((await open(dir('H'), TARGET_PW)).keys.read!.idRoot.equals((await open(dir('N'), '')).keys.read!.idRoot));
    const a = await open(dir('A'), SOURCE_PW);
    for (const d of ['F', 'G']) assert.ok((await open(dir(d), TARGET_PW)).keys.read!.idRoot.equals(a.keys.read!.idRoot), d);
  });
});

describe('a repository with imported roots, tampered with', () => {
  let tmp: ReturnType<typeof scratch>;
  before(() => {
    tmp = scratch('from-repo-tamper');
  });
  after(() => tmp.cleanup());

  /** A source and a repository made with its roots, as init --copy-chunker-params makes it. */
  async function pair(name: string): Promise<{ src: Repository; dst: Repository; dir: string }> {
    const src = await initRepo(path.join(tmp.dir, `${name}-src`));
    const dir = path.join(tmp.dir, name);
    return { src, dst: await initRepo(dir, src.chunking), dir };
  }

  test('the config with the marker taken out, or put into a config without it, fails its signature', async () => {
    const { src, dir } = await pair('marker');
    const config = path.join(dir, 'config');
    const text = fs.readFileSync(config, 'utf8');
    assert.match(text, /"roots":"imported",/);
    fs.writeFileSync(config, text.replace('"roots":"imported",', ''));
    await assert.rejects(Repository.open(new LocalBackend(dir), PASSWORD), (err: Error) => err instanceof IntegrityError && /config: not signed by this repository/.test(err.message));
    const plain = path.join(src.backend.location, 'config');
    fs.writeFileSync(plain, fs.readFileSync(plain, 'utf8').replace('"adminPublic"', '"roots":"imported","adminPublic"'));
    await assert.rejects(Repository.open(new LocalBackend(src.backend.location), PASSWORD), (err: Error) => err instanceof IntegrityError && /config: not signed by this repository/.test(err.message));
  });

  test('a full key file without the roots is refused, not used to name blobs with keys of its own', async () => {
    const { dst, dir } = await pair('rootless');
    // Made as a scrate from before the roots would make it: the master secret alone, signed by the admin key.
    const rootless = fullKeys(dst.keys.read!.master, dst.config.id);
    const id = await addKey(dst.backend, rootless, 'rootless', TEST_KDF_MS, dst.keys.writer.signing);
    await assert.rejects(Repository.open(new LocalBackend(dir), 'rootless'), (err: Error) => err instanceof IntegrityError && err.message === `key ${id.slice(0, 8)}: lacks the blob-ID and chunker roots this repository took from another (init --from-repo)`);
    assert.ok((await Repository.open(new LocalBackend(dir), PASSWORD)).keys.read!.rootsImported, 'the real key still opens it');
  });

  test('a full key file with roots, in a repository whose config has no marker, is refused', async () => {
    const dir = path.join(tmp.dir, 'unmarked');
    const repo = await initRepo(dir);
    const rooted = fullKeys(repo.keys.read!.master, repo.config.id, { idRoot: randomBytes(32), chunkerRoot: randomBytes(32) });
    await addKey(repo.backend, rooted, 'rooted', TEST_KDF_MS, repo.keys.writer.signing);
    await assert.rejects(Repository.open(new LocalBackend(dir), 'rooted'), (err: Error) => err instanceof IntegrityError && /carries imported blob-ID and chunker roots, but the config says this repository has its own/.test(err.message));
  });

  test('key secrets: roots only when imported, both or none', async () => {
    const { src, dst } = await pair('secrets');
    assert.deepEqual(Object.keys(JSON.parse(encodeAccess(src.keys).toString())), ['access', 'repository', 'master'], 'a repository of its own stores exactly what it stored before');
    const json = JSON.parse(encodeAccess(dst.keys).toString()) as Record<string, string>;
    assert.deepEqual(Object.keys(json), ['access', 'repository', 'master', 'idRoot', 'chunkerRoot']);
    const decoded = decodeAccess(Buffer.from(JSON.stringify(json)))!;
    assert.ok(decoded.read!.rootsImported && decoded.read!.idRoot.equals(src.keys.read!.idRoot) && decoded.read!.chunkerRoot.equals(src.keys.read!.chunkerRoot));
    for (const drop of ['idRoot', 'chunkerRoot']) {
      const { [drop]: _, ...half } = json;
      assert.equal(decodeAccess(Buffer.from(JSON.stringify(half))), null, `without ${drop}`);
    }
    assert.equal(decodeAccess(Buffer.from(JSON.stringify({ ...json, idRoot: 'short' }))), null);
  });
});

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { backup } from '../src/archiver/archiver.js';
import { AlreadyExistsError, NotFoundError, type Backend } from '../src/backend/backend.js';
import { openBackend } from '../src/backend/open.js';
import { RetryBackend, TransientError } from '../src/backend/retry.js';
import { S3Backend } from '../src/backend/s3.js';
import { parseS3Location } from '../src/backend/s3-location.js';
import { Repository } from '../src/repository/repository.js';
import { restore } from '../src/restorer/restorer.js';
import { listSnapshots } from '../src/snapshot/snapshot.js';
import { cliEnv, scrate } from './helpers/cli.js';
import { own, PASSWORD, scratch, TEST_KDF_MS } from './helpers/repo.js';
import { s3ServerUnavailable, startS3ServerWithCredentials, type S3Server } from './helpers/s3-server.js';
import { compareTrees, makeTree } from './helpers/tree.js';


/**
 * The same cases for every backend: whatever sits below the Backend interface, the
 * repository above it must behave identically.
 */
interface Target {
  name: string;
  /** A location for a new, empty repository. */
  location(tag: string): string;
  /** Environment a CLI run needs to reach it. */
  env: Record<string, string>;
  options: Record<string, string>;
}

let tmp: ReturnType<typeof scratch>;
let server: S3Server | undefined;
const unavailable = s3ServerUnavailable();
let src: string;

before(async () => {
  tmp = scratch('conformance');
  src = path.join(tmp.dir, 'src');
  fs.mkdirSync(src);
  await makeTree(src);
  if (!unavailable) {
    server = await startS3ServerWithCredentials();
  }
});
after(async () => {
  await server?.stop();
  tmp.cleanup();
});

const targets: Target[] = [
  { name: 'local directory', location: (tag) => path.join(tmp.dir, `repo-${tag}`), env: {}, options: {} },
  {
    name: 'S3 (OpenStack Swift with s3api)',
    location: (tag) => `s3:${server!.endpoint}/scrate-conformance/${tag}`,
    get env() {
      return { AWS_ACCESS_KEY_ID: server!.accessKeyId, AWS_SECRET_ACCESS_KEY: server!.secretAccessKey };
    },
    options: { 's3.connections': '4' },
  },
];

for (const target of targets) {
  const isS3 = target.name.startsWith('S3');
  describe(`backend conformance: ${target.name}`, { skip: isS3 && unavailable ? unavailable : false }, () => {
    const open = (tag: string): Promise<Backend> => openBackend(target.location(tag), target.options);

    test('save, load, ranged load, stat, list, remove', async () => {
      const b = await open('basic');
      await b.create();
      assert.equal(await b.exists(), false);
      const data = randomBytes(100_000);
      await b.save('data', 'ab' + '0'.repeat(62), data);
      assert.deepEqual(await b.load('data', 'ab' + '0'.repeat(62)), data);
      assert.deepEqual(await b.load('data', 'ab' + '0'.repeat(62), { range: { offset: 777, length: 5000 } }), data.subarray(777, 5777));
      assert.equal(await b.stat('data', 'ab' + '0'.repeat(62)), data.length);
      assert.equal(await b.stat('data', 'cd' + '0'.repeat(62)), null);
      await assert.rejects(b.load('index', 'ef' + '0'.repeat(62)), NotFoundError);
      await b.save('config', 'config', Buffer.from('c'));
      assert.equal(await b.exists(), true);
      const listed = [];
      for await (const e of b.list('data')) listed.push(e);
      assert.deepEqual(listed, [{ name: 'ab' + '0'.repeat(62), size: data.length }]);
      await b.remove('data', 'ab' + '0'.repeat(62));
      assert.equal(await b.stat('data', 'ab' + '0'.repeat(62)), null);
    });

    test('an object saved with create is never replaced', async () => {
      const b = await open('create');
      await b.create();
      await b.save('config', 'config', Buffer.from('first'), { create: true });
      await assert.rejects(b.save('config', 'config', Buffer.from('second'), { create: true }), AlreadyExistsError);
      assert.equal((await b.load('config', 'config')).toString(), 'first');
      assert.equal(isS3 || fs.readdirSync(target.location('create')).every((f) => !f.startsWith('.tmp-')), true, 'no temporary file left');
    });

    test('a create whose answer was lost counts as done when the object holds its bytes, and only then', async () => {
      const inner = await open('lost-answer');
      await inner.create();
      let fault: 'after' | 'before' | null = 'after';
      const lossy: Backend = {
        location: inner.location,
        connections: inner.connections,
        exists: () => inner.exists(),
        create: () => inner.create(),
        save: async (type, name, data, opts) => {
          const f = fault;
          fault = null;
          if (f === 'before') throw new TransientError('connection reset before the request was sent');
          await inner.save(type, name, data, opts);
          if (f === 'after') throw new TransientError('connection reset before the answer came');
        },
        load: (type, name, opts) => inner.load(type, name, opts),
        stat: (type, name) => inner.stat(type, name),
        list: (type) => inner.list(type),
        remove: (type, name) => inner.remove(type, name),
      };
      const b = new RetryBackend(lossy, { attempts: 3, baseDelayMs: 1, maxDelayMs: 1 });
      await b.save('config', 'config', Buffer.from('mine'), { create: true });
      fault = 'before';
      await assert.rejects(b.save('config', 'config', Buffer.from('theirs'), { create: true }), AlreadyExistsError);
      assert.equal((await inner.load('config', 'config')).toString(), 'mine');
    });

    test('listings past 1000 objects', async () => {
      const b = await open('many');
      await b.create();
      const names = Array.from({ length: 1100 }, (_, i) => i.toString(16).padStart(64, '0'));
      for (let i = 0; i < names.length; i += 50) await Promise.all(names.slice(i, i + 50).map((n) => b.save('snapshots', n, Buffer.from(n))));
      const listed: string[] = [];
      for await (const e of b.list('snapshots')) listed.push(e.name);
      assert.deepEqual(listed.sort(), names);
    });

    test('backup and restore round-trip a tree bit-exactly', async () => {
      const backend = await open('tree');
      await Repository.init(backend, PASSWORD, { kdfMs: TEST_KDF_MS });
      const repo = await Repository.open(await open('tree'), PASSWORD, { cacheRoot: path.join(tmp.dir, `cache-${isS3}`) });
      await repo.loadIndex();
      const { snapshot } = await backup(repo, { paths: [src] });
      const again = await Repository.open(await open('tree'), PASSWORD, { cacheRoot: path.join(tmp.dir, `cache-${isS3}`) });
      await again.loadIndex();
      const target = path.join(tmp.dir, `restored-${isS3}`);
      const stats = await restore(own(again), snapshot, { target, subpath: src });
      assert.equal(stats.errors, 0);
      assert.deepEqual(compareTrees(src, target), []);
    });

    test('concurrent writers both land their snapshots', async () => {
      const backend = await open('concurrent');
      await Repository.init(backend, PASSWORD, { kdfMs: TEST_KDF_MS });
      const other = path.join(tmp.dir, `other-${isS3}`);
      fs.mkdirSync(other);
      fs.writeFileSync(path.join(other, 'big'), randomBytes(5 * 1024 * 1024));
      const run = async (p: string) => {
        const repo = await Repository.open(await open('concurrent'), PASSWORD);
        await repo.loadIndex();
        return backup(repo, { paths: [p] });
      };
      const [a, b] = await Promise.all([run(src), run(other)]);
      const repo = await Repository.open(await open('concurrent'), PASSWORD);
      await repo.loadIndex();
      const ids = (await listSnapshots(repo)).map((e) => e.id).sort();
      assert.deepEqual(ids, [a.snapshotId, b.snapshotId].sort());
      const target = path.join(tmp.dir, `concurrent-${isS3}`);
      await restore(own(repo), b.snapshot, { target, subpath: other });
      assert.deepEqual(fs.readFileSync(path.join(target, 'big')), fs.readFileSync(path.join(other, 'big')));
    });

    test('the CLI works the same way', () => {
      const env = cliEnv(target.location('cli'), target.env);
      const o = Object.entries(target.options).flatMap(([k, v]) => ['-o', `${k}=${v}`]);
      assert.equal(scrate([...o, 'init'], env).code, 0);
      const b = scrate([...o, 'backup', path.join(src, 'data'), '--json'], env);
      assert.equal(b.code, 0, b.stderr);
      const out = path.join(tmp.dir, `cli-restored-${isS3}`);
      const r = scrate([...o, 'restore', `latest:${path.join(src, 'data')}`, '--target', out], env);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(compareTrees(path.join(src, 'data'), out), []);
    });

    if (isS3) {
      test('init creates a missing bucket', async () => {
        const location = `s3:${server!.endpoint}/fresh-bucket-${Date.now()}/repo`;
        const r = scrate(['init'], cliEnv(location, target.env));
        assert.equal(r.code, 0, r.stderr);
        assert.equal(scrate(['snapshots', '--json'], cliEnv(location, target.env)).stdout.trim(), '[]');
      });

      test('a save carries the caller\'s sha256 as the signed payload hash, which the server checks', async () => {
        // Straight to S3Backend: RetryBackend would retry the refusal (it may be a garbled transfer).
        const b = new S3Backend({ ...parseS3Location(target.location('payload-hash')), pathStyle: true, connections: 1 });
        await b.create();
        const data = randomBytes(1024 * 1024);
        const name = createHash('sha256').update(data).digest('hex');
        const other = createHash('sha256').update('other bytes').digest('hex');
        // Had the SDK hashed the body itself, the wrong value would never reach the server.
        await assert.rejects(b.save('data', name, data, { sha256: other }), (err: Error) => err instanceof TransientError && /BadDigest/.test(err.message));
        assert.equal(await b.stat('data', name), null);
        await b.save('data', name, data, { sha256: name });
        assert.deepEqual(await b.load('data', name), data);
      });

      test('a wrong secret key is a clear error, exit code 1', () => {
        const r = scrate(['snapshots'], cliEnv(target.location('cli'), { ...target.env, AWS_SECRET_ACCESS_KEY: 'not the secret' }));
        assert.equal(r.code, 1);
        assert.match(r.stderr, /access denied .*AWS_SECRET_ACCESS_KEY/);
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      });

      test('a missing bucket is "repository does not exist", exit code 10', () => {
        const r = scrate(['snapshots'], cliEnv(`s3:${server!.endpoint}/no-such-bucket-here/x`, target.env));
        assert.equal(r.code, 10, r.stderr);
      });

      test('the cache serves snapshots and tree packs; deleting it is harmless', () => {
        const cacheHome = path.join(tmp.dir, 'xdg');
        const env = cliEnv(target.location('cli'), { ...target.env, XDG_CACHE_HOME: cacheHome });
        assert.equal(scrate(['ls', 'latest'], env).code, 0);
        const repoCaches = fs.readdirSync(path.join(cacheHome, 'scrate')).filter((n) => n !== 'CACHEDIR.TAG' && n !== 'pins');
        assert.equal(repoCaches.length, 1);
        const dir = path.join(cacheHome, 'scrate', repoCaches[0]!);
        assert.equal(fs.readdirSync(path.join(dir, 'snapshots')).length, 1);
        assert.ok(fs.readdirSync(path.join(dir, 'data')).length >= 1, 'tree pack cached');
        // A damaged cached copy is noticed and replaced, never used.
        const [snap] = fs.readdirSync(path.join(dir, 'snapshots'));
        fs.writeFileSync(path.join(dir, 'snapshots', snap!), 'garbage');
        assert.equal(scrate(['snapshots'], env).code, 0);
        assert.notEqual(fs.readFileSync(path.join(dir, 'snapshots', snap!), 'utf8'), 'garbage');
        fs.rmSync(path.join(cacheHome, 'scrate'), { recursive: true });
        assert.equal(scrate(['ls', 'latest'], env).code, 0);
        assert.equal(scrate(['--no-cache', 'ls', 'latest'], { ...env, XDG_CACHE_HOME: path.join(tmp.dir, 'unused') }).code, 0);
        assert.ok(!fs.existsSync(path.join(tmp.dir, 'unused')));
      });
    }
  });
}

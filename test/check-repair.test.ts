import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { backup } from '../src/archiver/archiver.js';
import { LocalBackend } from '../src/backend/local.js';
import type { ObjectOptions, ObjectType } from '../src/backend/backend.js';
import { check, type CheckError, type CheckOptions } from '../src/checker/checker.js';
import { repairSnapshots } from '../src/maintenance/repair-snapshots.js';
import { addWriteOnlyKey } from '../src/repository/key-admin.js';
import { BlobType, newPack } from '../src/repository/pack.js';
import { Repository } from '../src/repository/repository.js';
import { restore } from '../src/restorer/restorer.js';
import { listSnapshots, saveSnapshot, type SnapshotEntry } from '../src/snapshot/snapshot.js';
import { walkTree } from '../src/tree/walk.js';
import { cliEnv, jsonMessage, scrate, type RunResult } from './helpers/cli.js';
import { initRepo, openRepo, PASSWORD, scratch, TEST_KDF_MS } from './helpers/repo.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const WO_PASSWORD = 'write only password';

/** Every regular file below `dir`, by its path relative to it, with its content. */
function filesBelow(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const p = path.join(rel, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.set(p, fs.readFileSync(path.join(dir, p)));
    }
  };
  walk('');
  return out;
}

/** Each file of a snapshot (by its path in the snapshot) with its blobs. */
async function filesOf(repo: Repository, entry: SnapshotEntry): Promise<Map<string, Buffer[]>> {
  const out = new Map<string, Buffer[]>();
  for await (const { path: parts, node } of walkTree(repo.reader(entry.writer), Buffer.from(entry.snapshot.tree, 'hex'))) {
    if (node.type === 'file') out.set('/' + parts.map(String).join('/'), node.content ?? []);
  }
  return out;
}

const packFile = (repo: string, id: string) => path.join(repo, 'data', id.slice(0, 2), id);

/** `scrate … --json` that must exit with `code`: its parsed output. */
function json<T>(r: RunResult, code = 0): T {
  assert.equal(r.code, code, r.stderr);
  return JSON.parse(r.stdout) as T;
}

/** A backup that must succeed: the full ID of its snapshot, from its summary line. */
function backupId(r: RunResult): string {
  assert.equal(r.code, 0, r.stderr);
  return jsonMessage<{ full_snapshot_id: string }>(r.stdout, 'summary').full_snapshot_id;
}

/** What `check --json` prints: restic's summary, with scrate's counts and problems. */
interface CheckSummary {
  num_errors: number;
  broken_packs: string[];
  packs: number;
  packs_read: number;
  errors: CheckError[];
}

/** The dependents of a check's errors as "snapshot path" lines, sorted. */
function dependents(errors: CheckError[]): string[] {
  return errors.flatMap((e) => e.dependents.map((d) => `${d.snapshot} ${d.path}`)).sort();
}

describe('loss: a data pack deleted, another damaged', () => {
  let tmp: ReturnType<typeof scratch>;
  let repo: string;
  let src: string;
  let env: NodeJS.ProcessEnv;
  /** The three snapshots, oldest first: the small files; then big.bin added; then small/s07 deleted. */
  let snapshots: string[];
  let deleted: string;
  let damaged: string;
  /** Blobs flipped in the damaged pack: small/s07's (in the first two snapshots only) and that of `other`, a file still in the source. */
  let flipped: { blobs: Buffer[]; other: string };
  let damagedBlobs: number;
  /** Which files of which snapshots each damage costs ("snapshot path"). */
  let lostWithDeleted: string[];
  let lostWithDamaged: string[];
  const small = (i: number) => `small/s${String(i).padStart(2, '0')}`;
  const cli = (...args: string[]) => scrate(args, env);

  before(async () => {
    tmp = scratch('check-repair');
    repo = path.join(tmp.dir, 'repo');
    src = path.join(tmp.dir, 'src');
    fs.mkdirSync(path.join(src, 'small'), { recursive: true });
    for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(src, small(i)), randomBytes(8000));
    // Packs of 256 KiB: the small files fill one or two, each chunk of big.bin has packs of its own.
    await initRepo(repo, { packSize: 256 * KiB });
    env = cliEnv(repo, { SCRATE_PASSWORD: PASSWORD, XDG_CACHE_HOME: path.join(tmp.dir, 'cache') });
    const ids = [];
    ids.push(backupId(cli('backup', src, '--json')));
    fs.writeFileSync(path.join(src, 'big.bin'), randomBytes(2 * MiB));
    ids.push(backupId(cli('backup', src, '--json')));
    fs.rmSync(path.join(src, small(7)));
    ids.push(backupId(cli('backup', src, '--json')));
    snapshots = ids;

    const r = await openRepo(repo);
    const entries = await listSnapshots(r);
    assert.deepEqual(entries.map((e) => e.id), snapshots);
    const files = await Promise.all(entries.map((e) => filesOf(r, e)));
    const packOf = (id: Buffer) => r.reader(r.self).find(BlobType.data, id)!.pack.id.toString('hex');
    const at = (p: string) => path.join(src, p);
    deleted = packOf(files[1]!.get(at('big.bin'))![0]!);
    const s07 = files[0]!.get(at(small(7)))![0]!;
    damaged = packOf(s07);
    const { header } = await r.loadPack(damaged);
    damagedBlobs = header.entries.length;
    assert.ok(damagedBlobs >= 3, `${damagedBlobs} blobs in the pack of s07`);
    const other = [...files[2]!].find(([p, ids]) => p.includes('/small/') && packOf(ids[0]!) === damaged)![0];
    flipped = { blobs: [s07, files[2]!.get(other)![0]!], other };
    const bytes = fs.readFileSync(packFile(repo, damaged));
    for (const id of flipped.blobs) bytes[header.entries.find((e) => e.id.equals(id))!.offset + 5] ^= 1;
    fs.writeFileSync(packFile(repo, damaged), bytes);
    fs.rmSync(packFile(repo, deleted));

    const lost = (blobIn: (id: Buffer) => boolean) =>
      entries.flatMap((e, i) => [...files[i]!].filter(([, ids]) => ids.some(blobIn)).map(([p]) => `${e.id} ${p}`)).sort();
    lostWithDeleted = lost((id) => packOf(id) === deleted);
    lostWithDamaged = lost((id) => flipped.blobs.some((f) => f.equals(id)));
  });
  after(() => tmp.cleanup());

  test('check names the files the missing pack costs, in every snapshot', () => {
    assert.deepEqual(lostWithDeleted, [`${snapshots[1]} ${src}/big.bin`, `${snapshots[2]} ${src}/big.bin`].sort());
    const result = json<CheckSummary>(cli('check', '--json'), 1);
    assert.deepEqual(result.errors.map((e) => [e.kind, e.object]), [['pack-missing', deleted]]);
    assert.equal(result.num_errors, 1);
    assert.deepEqual(result.broken_packs, [deleted]);
    assert.deepEqual(dependents(result.errors), lostWithDeleted);
    const text = cli('check');
    assert.equal(text.code, 1);
    assert.match(text.stderr, new RegExp(`^warning: pack ${deleted.slice(0, 12)}: listed in the index but missing$`, 'm'));
    assert.match(text.stderr, new RegExp(`^warning:   needed by snapshot ${snapshots[2]!.slice(0, 8)}: ${src}/big.bin$`, 'm'));
    assert.match(text.stdout, /2 file\(s\) or directories in 2 snapshot\(s\) are damaged or lost/);
  });

  test('check --read-data also names the damaged pack and the files its damaged blobs cost', () => {
    assert.deepEqual(lostWithDamaged, [
      `${snapshots[0]} ${src}/${small(7)}`,
      `${snapshots[0]} ${flipped.other}`,
      `${snapshots[1]} ${src}/${small(7)}`,
      `${snapshots[1]} ${flipped.other}`,
      `${snapshots[2]} ${flipped.other}`,
    ].sort());
    const result = json<CheckSummary>(cli('check', '--read-data', '--json'), 1);
    assert.deepEqual(result.errors.map((e) => [e.kind, e.object]), [['pack-missing', deleted], ['pack-damaged', damaged]]);
    const [, packError] = result.errors;
    assert.match(packError!.message, /content does not match its name; 2 damaged blob\(s\) \(blob [0-9a-f]{12} in pack [0-9a-f]{12}: blob failed authentication, …\)/);
    assert.deepEqual(dependents([packError!]), lostWithDamaged);
    assert.equal(result.packs_read, result.packs);
    assert.deepEqual(result.broken_packs, [deleted, damaged]);
  });

  test('restore of the latest snapshot restores every other file exactly, names the damaged ones, exits 3', () => {
    const target = path.join(tmp.dir, 'restored-latest');
    const r = cli('restore', `latest:${src}`, '--target', target);
    assert.equal(r.code, 3, r.stderr);
    const lost = ['big.bin', path.relative(src, flipped.other)].sort();
    for (const name of lost) assert.match(r.stderr, new RegExp(`^warning: ${target}/${name}: `, 'm'));
    const restored = filesBelow(target);
    const expected = filesBelow(src);
    assert.deepEqual([...restored.keys()].sort(), [...expected.keys()].filter((p) => !lost.includes(p)).sort());
    for (const [p, bytes] of restored) assert.ok(bytes.equals(expected.get(p)!), `${p} restored exactly`);
  });

  test('repair packs stores the good blobs of the damaged pack again, drops both packs, names what is lost', () => {
    const results = json<{ pack: string; intact: boolean; saved: number; lost: { blob: string; type: string }[] }[]>(cli('repair', 'packs', damaged.slice(0, 10), deleted, '--json'));
    const [fromDamaged, fromDeleted] = results;
    assert.equal(fromDamaged!.pack, damaged);
    assert.equal(fromDamaged!.saved, damagedBlobs - 2);
    assert.deepEqual(fromDamaged!.lost.map((l) => l.blob).sort(), flipped.blobs.map((b) => b.toString('hex')).sort());
    assert.equal(fromDeleted!.pack, deleted);
    assert.ok(fromDeleted!.lost.length >= 1 && fromDeleted!.lost.every((l) => l.type === 'data'));
    assert.ok(!fs.existsSync(packFile(repo, damaged)));
    // What is lost is now a blob no index lists, needed by the same files.
    const result = json<CheckSummary>(cli('check', '--read-data', '--json'), 1);
    assert.ok(result.errors.every((e) => e.kind === 'blob-missing'), result.errors.map((e) => e.message).join('\n'));
    // One error per blob lost: a file that lost several (big.bin may, as the keyed chunker cuts
    // it) is named under each.
    assert.deepEqual([...new Set(dependents(result.errors))], [...lostWithDeleted, ...lostWithDamaged].sort());
  });

  test('a backup of the same sources stores again what was lost and still exists', () => {
    const r = cli('backup', src, '--json');
    const summary = jsonMessage<{ full_snapshot_id: string; bytes_read: number }>(r.stdout, 'summary');
    assert.ok(summary.bytes_read >= 2 * MiB + 8000, `${summary.bytes_read} bytes read`);
    snapshots.push(summary.full_snapshot_id);
    // Only small/s07 is gone for good: the first two snapshots still lack it.
    const result = json<CheckSummary>(cli('check', '--json'), 1);
    assert.deepEqual(dependents(result.errors), [`${snapshots[0]} ${src}/${small(7)}`, `${snapshots[1]} ${src}/${small(7)}`].sort());
  });

  test('repair snapshots --forget writes the damaged snapshots again without what they lost', async () => {
    const results = json<{ original: string; repaired: string; root_lost: boolean; lost: { path: string }[]; forgotten: boolean }[]>(cli('repair', 'snapshots', '--forget', '--json'));
    assert.deepEqual(results.map((r) => r.original), snapshots.slice(0, 2));
    for (const r of results) {
      assert.deepEqual(r.lost.map((l) => l.path), [`${src}/${small(7)}`]);
      assert.equal(r.forgotten, true);
      assert.equal(r.root_lost, false);
    }
    const check = cli('check', '--read-data');
    assert.equal(check.code, 0, check.stderr);
    assert.equal(check.stderr, '');

    const all = await listSnapshots(await openRepo(repo));
    const repaired = new Map(results.map((r) => [r.repaired, r.original]));
    assert.deepEqual(all.map((e) => e.id).sort(), [...results.map((r) => r.repaired), ...snapshots.slice(2)].sort());
    for (const e of all.filter((e) => repaired.has(e.id))) {
      assert.equal(e.snapshot.original, repaired.get(e.id));
      assert.ok(e.snapshot.tags.includes('repaired'));
      assert.equal(e.snapshot.writer, undefined, 'the full writer\'s own snapshot names no writer');
    }
    // Every snapshot restores, the repaired ones without small/s07; the rest of each is exact.
    const source = filesBelow(src);
    for (const e of all) {
      const target = path.join(tmp.dir, `restored-${e.id.slice(0, 8)}`);
      const r = cli('restore', `${e.id}:${src}`, '--target', target);
      assert.equal(r.code, 0, r.stderr);
      const restored = filesBelow(target);
      const first = repaired.get(e.id) === snapshots[0];
      assert.deepEqual([...restored.keys()].sort(), [...source.keys()].filter((p) => !first || p !== 'big.bin').sort());
      for (const [p, bytes] of restored) assert.ok(bytes.equals(source.get(p)!), `${p} of ${e.id.slice(0, 8)}`);
    }
  });
});

/** Counts the whole packs a check reads (tree packs read for trees come with `metadata`). */
class CountingBackend extends LocalBackend {
  readonly packsRead: string[] = [];

  override async load(type: ObjectType, name: string, opts?: ObjectOptions): Promise<Buffer> {
    if (type === 'data' && !opts?.range && !opts?.metadata) this.packsRead.push(name);
    return super.load(type, name, opts);
  }
}

describe('check --read-data-subset', () => {
  let tmp: ReturnType<typeof scratch>;
  let dir: string;
  let packs: Map<string, number>;
  const run = async (readData: CheckOptions['readData']) => {
    const backend = new CountingBackend(dir);
    const result = await check(await Repository.open(backend, PASSWORD), { readData });
    assert.deepEqual(result.errors, []);
    assert.equal(result.packsRead, backend.packsRead.length);
    return backend.packsRead;
  };

  before(async () => {
    tmp = scratch('check-subset');
    dir = path.join(tmp.dir, 'repo');
    const src = path.join(tmp.dir, 'src');
    fs.mkdirSync(src);
    // Each file a pack of its own.
    for (let i = 0; i < 40; i++) fs.writeFileSync(path.join(src, `f${i}`), randomBytes(300 * KiB));
    await initRepo(dir, { packSize: 256 * KiB });
    await backup(await openRepo(dir), { paths: [src] });
    packs = new Map();
    for (const sub of fs.readdirSync(path.join(dir, 'data'))) {
      for (const name of fs.readdirSync(path.join(dir, 'data', sub))) packs.set(name, fs.statSync(path.join(dir, 'data', sub, name)).size);
    }
    assert.ok(packs.size >= 40, `${packs.size} packs`);
  });
  after(() => tmp.cleanup());

  test('n/t over t runs reads every pack exactly once', async () => {
    const read: string[] = [];
    for (let n = 1; n <= 5; n++) {
      const group = await run({ part: n, of: 5 });
      assert.ok(group.every((id) => parseInt(id.slice(0, 2), 16) % 5 === n - 1));
      read.push(...group);
    }
    assert.deepEqual(read.sort(), [...packs.keys()].sort());
  });

  test('x% reads that share of the packs, at random', async () => {
    const first = await run({ percent: 25 });
    assert.equal(first.length, Math.floor(packs.size / 4));
    assert.equal(new Set(first).size, first.length);
    assert.equal((await run({ percent: 100 })).length, packs.size);
    assert.equal((await run({ percent: 0.1 })).length, 1, 'at least one');
  });

  test('a size reads that share of the repository\'s bytes, as a share of its packs', async () => {
    const total = [...packs.values()].reduce((a, b) => a + b, 0);
    const read = await run({ bytes: Math.round(total / 4) });
    assert.ok(Math.abs(read.length - packs.size / 4) <= 1, `${read.length} of ${packs.size} packs`);
    assert.equal((await run({ bytes: 10 * total })).length, packs.size);
  });

  test('the CLI takes restic\'s three forms and refuses the rest', () => {
    const env = cliEnv(dir, { SCRATE_PASSWORD: PASSWORD, XDG_CACHE_HOME: path.join(tmp.dir, 'cache') });
    for (const [subset, count] of [['2/3', [...packs.keys()].filter((id) => parseInt(id.slice(0, 2), 16) % 3 === 1).length], ['50%', Math.floor(packs.size / 2)], ['1G', packs.size]] as const) {
      const result = json<CheckSummary>(scrate(['check', '--read-data-subset', subset, '--json'], env));
      assert.equal(result.packs_read, count, subset);
    }
    for (const bad of ['0/3', '4/3', '1/257', '0%', '101%', 'lots']) {
      const r = scrate(['check', '--read-data-subset', bad], env);
      assert.equal(r.code, 1, bad);
      assert.match(r.stderr, /--read-data-subset/);
    }
    assert.equal(scrate(['check', '--read-data', '--read-data-subset', '1/2'], env).code, 1);
  });
});

describe('repair index, and repairs of a write-only writer\'s snapshots', () => {
  let tmp: ReturnType<typeof scratch>;
  let dir: string;
  let fullSrc: string;
  let hostSrc: string;
  let env: NodeJS.ProcessEnv;
  let hostEnv: NodeJS.ProcessEnv;
  const openWriteOnly = async () => {
    const repo = await Repository.open(new LocalBackend(dir), WO_PASSWORD, { stateRoot: path.join(tmp.dir, 'records') });
    await repo.loadIndex();
    return repo;
  };

  /** Restores every snapshot with a full key: each must be exactly its source. */
  async function restoresExactly(sources: Map<string, string>): Promise<void> {
    const repo = await openRepo(dir);
    for (const e of await listSnapshots(repo)) {
      const source = sources.get(e.snapshot.paths[0]!)!;
      const target = path.join(tmp.dir, `restored-${e.id.slice(0, 8)}-${Date.now()}`);
      const stats = await restore(repo.reader(e.writer), e.snapshot, { target, subpath: source });
      assert.equal(stats.errors, 0);
      const restored = filesBelow(target);
      const expected = filesBelow(source);
      assert.deepEqual([...restored.keys()].sort(), [...expected.keys()].sort());
      for (const [p, bytes] of restored) assert.ok(bytes.equals(expected.get(p)!), p);
    }
  }

  before(async () => {
    tmp = scratch('repair-index');
    dir = path.join(tmp.dir, 'repo');
    fullSrc = path.join(tmp.dir, 'full-src');
    hostSrc = path.join(tmp.dir, 'host-src');
    for (const [d, n] of [[fullSrc, 6], [hostSrc, 6]] as const) {
      fs.mkdirSync(path.join(d, 'sub'), { recursive: true });
      for (let i = 0; i < n; i++) fs.writeFileSync(path.join(d, i % 2 ? 'sub' : '', `f${i}`), randomBytes(200 * KiB + i));
    }
    await initRepo(dir, { packSize: 256 * KiB });
    const full = await openRepo(dir);
    await backup(full, { paths: [fullSrc] });
    await addWriteOnlyKey(full, WO_PASSWORD, TEST_KDF_MS, 'web1');
    await backup(await openWriteOnly(), { paths: [hostSrc] });
    env = cliEnv(dir, { SCRATE_PASSWORD: PASSWORD, XDG_CACHE_HOME: path.join(tmp.dir, 'cache') });
    hostEnv = cliEnv(dir, { SCRATE_PASSWORD: WO_PASSWORD, XDG_CACHE_HOME: path.join(tmp.dir, 'cache-host') });
  });
  after(() => tmp.cleanup());

  test('with every index file gone, repair index rebuilds it from the packs: everything restores', async () => {
    const before = await openRepo(dir);
    const packCount = before.index.packs.length;
    // A pack anyone can write with the repository's public key, claiming the full writer.
    const forged = newPack(BlobType.data, before.keys.sealPublic, Buffer.alloc(16), 64 * KiB);
    forged.add(randomBytes(32), Buffer.from('not what its ID says'), 20, false);
    const { bytes, id } = forged.finish();
    fs.mkdirSync(path.dirname(packFile(dir, id.toString('hex'))), { recursive: true });
    fs.writeFileSync(packFile(dir, id.toString('hex')), bytes);
    for (const name of fs.readdirSync(path.join(dir, 'index'))) fs.rmSync(path.join(dir, 'index', name));
    assert.equal((await openRepo(dir)).index.packs.length, 0);

    const result = json<{ packs: number; left_out: { pack: string; why: string }[]; removed: number }>(scrate(['repair', 'index', '--json'], env));
    assert.equal(result.packs, packCount);
    assert.deepEqual(result.left_out.map((l) => l.pack), [id.toString('hex')]);
    assert.match(result.left_out[0]!.why, /content does not match its ID/);
    fs.rmSync(packFile(dir, id.toString('hex')));

    const repaired = await check(await openRepo(dir, PASSWORD, { index: false }), { readData: true });
    assert.deepEqual(repaired.errors, []);
    assert.equal(repaired.packsRead, packCount);
    const repo = await openRepo(dir);
    assert.ok((await listSnapshots(repo)).some((e) => e.writer.hostname === 'web1'));
    await restoresExactly(new Map([[fullSrc, fullSrc], [hostSrc, hostSrc]]));
  });

  test('a write-only writer\'s damaged snapshot is written again by a full key as that writer\'s', async () => {
    const repo = await openRepo(dir);
    const [host] = (await listSnapshots(repo)).filter((e) => e.writer.hostname === 'web1');
    const files = await filesOf(repo, host!);
    const victim = path.join(hostSrc, 'f2');
    const pack = repo.reader(host!.writer).find(BlobType.data, files.get(victim)![0]!)!.pack.id.toString('hex');
    fs.rmSync(packFile(dir, pack));
    json(scrate(['repair', 'packs', pack, '--json'], env));
    const results = json<{ original: string; repaired: string; lost: { path: string }[] }[]>(scrate(['repair', 'snapshots', '--json'], env));
    assert.deepEqual(results.map((r) => r.original), [host!.id]);
    const lost = results[0]!.lost.map((l) => l.path);
    assert.ok(lost.includes(victim), lost.join(', '));

    const after = await listSnapshots(await openRepo(dir));
    const repaired = after.find((e) => e.id === results[0]!.repaired)!;
    assert.equal(repaired.writer, after.find((e) => e.id === host!.id)!.writer, 'its blobs are the host\'s');
    assert.equal(repaired.snapshot.writer, repaired.writer.hex);
    assert.equal(repaired.snapshot.hostname, 'web1');
    const target = path.join(tmp.dir, 'restored-host-repaired');
    const stats = await restore((await openRepo(dir)).reader(repaired.writer), repaired.snapshot, { target, subpath: hostSrc });
    assert.equal(stats.errors, 0);
    const restored = filesBelow(target);
    const expected = filesBelow(hostSrc);
    assert.deepEqual([...restored.keys()].sort(), [...expected.keys()].filter((p) => !lost.includes(path.join(hostSrc, p))).sort());
    for (const [p, bytes] of restored) assert.ok(bytes.equals(expected.get(p)!), p);
  });

  test('a write-only writer\'s snapshot naming another writer is refused', async () => {
    const wo = await openWriteOnly();
    const [own] = await listSnapshots(wo);
    const forged = await saveSnapshot(wo, { ...own!.snapshot, writer: '0'.repeat(32) });
    const skipped: string[] = [];
    const listed = await listSnapshots(await openRepo(dir), (id, err) => skipped.push(`${id} ${err.message}`));
    assert.ok(!listed.some((e) => e.id === forged));
    assert.match(skipped.join('\n'), new RegExp(`^${forged} snapshot ${forged.slice(0, 8)}: names writer 00000000, which only a full key may$`, 'm'));
    fs.rmSync(path.join(dir, 'snapshots', forged));
  });

  test('a write-only key gets exit 1 from every repair command', () => {
    assert.equal(scrate(['backup', hostSrc], hostEnv).code, 0);
    const pack = fs.readdirSync(path.join(dir, 'data', fs.readdirSync(path.join(dir, 'data'))[0]!))[0]!;
    for (const args of [['repair', 'index'], ['repair', 'snapshots', '--forget'], ['repair', 'packs', pack]]) {
      const r = scrate(args, hostEnv);
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.stderr, /^scrate: this key is write-only/, args.join(' '));
    }
  });
});

describe('repair snapshots: a tree that does not load', () => {
  let tmp: ReturnType<typeof scratch>;
  after(() => tmp.cleanup());

  test('becomes an empty directory; everything beside it is kept', async () => {
    tmp = scratch('repair-tree');
    const dir = path.join(tmp.dir, 'repo');
    const src = path.join(tmp.dir, 'src');
    fs.mkdirSync(path.join(src, 'sub', 'deeper'), { recursive: true });
    fs.writeFileSync(path.join(src, 'kept'), randomBytes(5000));
    fs.writeFileSync(path.join(src, 'sub', 'deeper', 'gone'), randomBytes(5000));
    await initRepo(dir);
    const { snapshotId } = await backup(await openRepo(dir), { paths: [src] });
    const repo = await openRepo(dir);
    const [entry] = await listSnapshots(repo);
    let sub: Buffer | undefined;
    for await (const { path: parts, node } of walkTree(repo.reader(entry!.writer), Buffer.from(entry!.snapshot.tree, 'hex'))) {
      if (node.subtree && parts.map(String).join('/') === path.join(src, 'sub').slice(1)) sub = node.subtree;
    }
    const loc = repo.reader(repo.self).find(BlobType.tree, sub!)!;
    const file = packFile(dir, loc.pack.id.toString('hex'));
    const bytes = fs.readFileSync(file);
    bytes[loc.offset + 3] ^= 1;
    fs.writeFileSync(file, bytes);

    const [result] = await repairSnapshots(await openRepo(dir));
    assert.equal(result!.original, snapshotId);
    assert.deepEqual(result!.lost.map((l) => l.path), [`${src}/sub`]);
    assert.match(result!.lost[0]!.why, /failed authentication/);
    const after = await openRepo(dir);
    const repaired = (await listSnapshots(after)).find((e) => e.id === result!.repaired)!;
    const target = path.join(tmp.dir, 'restored');
    assert.equal((await restore(after.reader(repaired.writer), repaired.snapshot, { target, subpath: src })).errors, 0);
    assert.deepEqual(fs.readdirSync(path.join(target, 'sub')), []);
    assert.ok(fs.readFileSync(path.join(target, 'kept')).equals(fs.readFileSync(path.join(src, 'kept'))));
  });
});

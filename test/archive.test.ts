import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { after, before, describe, test } from 'node:test';
import { Sink } from '../src/archive/sink.js';
import { ZipStream } from '../src/archive/zip-stream.js';
import { BlobType } from '../src/repository/pack.js';
import { assertCleanError, backupSnapshotId, cliEnv, SCRATE, scrate } from './helpers/cli.js';
import { RawTrees } from './helpers/raw-tree.js';
import { initRepo, PASSWORD, scratch } from './helpers/repo.js';
import { compareTrees, makeTree, pseudoRandom, TREE } from './helpers/tree.js';

const asRoot = process.getuid?.() === 0;
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

function installed(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
}

// CI runs as root with every tool installed: there nothing is skipped, and a missing tool fails.
const tools = ['tar', 'unzip', '/usr/bin/time'].filter((t) => !installed(t));
const skip = process.env['CI'] ? false : !asRoot ? 'extracts as root (owners, device nodes)' : tools.length ? `${tools.join(', ')} not installed` : false;

/** Runs a shell pipeline under bash with pipefail: any stage failing fails it. */
function pipeline(script: string, env: NodeJS.ProcessEnv): { code: number; stdout: string; stderr: string } {
  const r = spawnSync('bash', ['-o', 'pipefail', '-c', script], { env, encoding: 'utf8', maxBuffer: 64 * MiB });
  return { code: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
}

const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

/**
 * compareTrees' lines that are not what the archive format cannot carry: GNU tar and zip keep
 * whole seconds, so an mtime must be the original's, rounded down to its second.
 */
function differences(a: string, b: string, allowed: RegExp[] = []): string[] {
  return compareTrees(a, b, { compareRoot: true }).filter((line) => {
    if (allowed.some((re) => re.test(line))) return false;
    const m = /: mtime (-?\d+)ns vs (-?\d+)ns$/.exec(line);
    if (m) {
      const [original, extracted] = [BigInt(m[1]!), BigInt(m[2]!)];
      const second = original / 1_000_000_000n - (original % 1_000_000_000n < 0n ? 1n : 0n);
      return extracted !== second * 1_000_000_000n;
    }
    return true;
  });
}

/** The members of a tar archive, read by hand: type flag, name (from a ././@LongLink member if any), size field. */
function tarMembers(archive: Buffer): { type: string; name: Buffer; size: bigint }[] {
  const members: { type: string; name: Buffer; size: bigint }[] = [];
  let longName: Buffer | undefined;
  for (let at = 0; at + 512 <= archive.length; ) {
    const h = archive.subarray(at, at + 512);
    if (h.every((b) => b === 0)) break;
    assert.equal(h.subarray(257, 265).toString('latin1'), 'ustar  \0', 'GNU magic');
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
    assert.equal(parseInt(h.subarray(148, 154).toString('latin1'), 8), sum, 'checksum');
    const field = h.subarray(124, 136);
    const size = field[0]! & 0x80 ? field.subarray(1).reduce((v, b) => (v << 8n) | BigInt(b), 0n) : BigInt(parseInt(field.toString('latin1'), 8));
    const type = String.fromCharCode(h[156]!);
    // A sparse member's map may go on in extension blocks; its size counts only the data.
    let dataAt = at + 512;
    if (type === 'S') for (let extended = h[482] === 1; extended; dataAt += 512) extended = archive[dataAt + 504] === 1;
    const data = archive.subarray(dataAt, dataAt + Number(size));
    if (type === 'L') longName = data.subarray(0, data.length - 1);
    else if (type !== 'K') {
      const name = h.subarray(0, 100);
      members.push({ type, name: longName ?? name.subarray(0, name.indexOf(0) < 0 ? 100 : name.indexOf(0)), size });
      longName = undefined;
    }
    at = dataAt + Math.ceil(Number(size) / 512) * 512;
  }
  return members;
}

/**
 * The count and offset of a zip archive's central directory, from the zip64 end record where the
 * end record says so; `archive` may be the archive's tail, starting at `archiveAt`.
 */
function zipDirectory(archive: Buffer, archiveAt = 0): { count: number; at: number; zip64: boolean } {
  const end = archive.length - 22;
  assert.equal(archive.readUInt32LE(end), 0x06054b50, 'end of central directory');
  const [count, at] = [archive.readUInt16LE(end + 10), archive.readUInt32LE(end + 16)];
  if (count !== 0xffff && at !== 0xffffffff) return { count, at, zip64: false };
  assert.equal(archive.readUInt32LE(end - 20), 0x07064b50, 'zip64 end locator');
  const end64 = Number(archive.readBigUInt64LE(end - 20 + 8)) - archiveAt;
  assert.equal(archive.readUInt32LE(end64), 0x06064b50, 'zip64 end of central directory');
  return { count: Number(archive.readBigUInt64LE(end64 + 32)), at: Number(archive.readBigUInt64LE(end64 + 48)), zip64: true };
}

/** The names in a zip archive's central directory, as the bytes stored. */
function zipNames(archive: Buffer): Buffer[] {
  const { count, at: start } = zipDirectory(archive);
  const names: Buffer[] = [];
  for (let i = 0, at = start; i < count; i++) {
    assert.equal(archive.readUInt32LE(at), 0x02014b50, 'central directory entry');
    const [nameLength, extra, comment] = [archive.readUInt16LE(at + 28), archive.readUInt16LE(at + 30), archive.readUInt16LE(at + 32)];
    names.push(archive.subarray(at + 46, at + 46 + nameLength));
    at += 46 + nameLength + extra + comment;
  }
  return names;
}

/** Every path below `root` as the archive names it (with the root's own path, no leading slash), directories with '/'. */
function expectedNames(root: string, keep: (st: fs.Stats) => boolean = () => true): Buffer[] {
  const out: Buffer[] = [];
  const visit = (abs: Buffer) => {
    const st = fs.lstatSync(abs);
    if (!keep(st)) return;
    const rel = abs.subarray(1);
    out.push(st.isDirectory() ? Buffer.concat([rel, Buffer.from('/')]) : rel);
    if (st.isDirectory()) for (const name of fs.readdirSync(abs, { encoding: 'buffer' }).sort(Buffer.compare)) visit(Buffer.concat([abs, Buffer.from('/'), name]));
  };
  visit(Buffer.from(root));
  return out;
}

/** A file written by a Sink, where chunks of zeros are left as holes: an archive of gigabytes of zeros that takes no room. */
class SparseFile extends Writable {
  private static readonly zeros = Buffer.alloc(64 * MiB);
  private readonly fd: number;
  private at = 0;

  constructor(file: string) {
    super();
    this.fd = fs.openSync(file, 'w');
  }

  override _write(chunk: Buffer, _encoding: string, done: (err?: Error) => void): void {
    if (chunk.length > SparseFile.zeros.length || !chunk.equals(SparseFile.zeros.subarray(0, chunk.length))) fs.writeSync(this.fd, chunk, 0, chunk.length, this.at);
    this.at += chunk.length;
    done();
  }

  override _final(done: (err?: Error) => void): void {
    fs.ftruncateSync(this.fd, this.at);
    fs.closeSync(this.fd);
    done();
  }
}

const sortedHex = (names: Buffer[]) => names.map((n) => n.toString('hex')).sort();

describe('dump --archive', { skip }, () => {
  let tmp: ReturnType<typeof scratch>;
  let repo: string;
  let src: string;
  let env: NodeJS.ProcessEnv;
  /** The snapshot of `src` (another test backs up more). */
  let snapshot: string;
  /** Extra entries beside makeTree's: hard links under long names, and ids too large for octal fields. */
  const longFirst = 'extra/' + 'first-'.repeat(25);
  const longSecond = 'extra/' + 'second-'.repeat(25);

  before(async () => {
    tmp = scratch('archive');
    repo = path.join(tmp.dir, 'repo');
    src = path.join(tmp.dir, 'src');
    env = cliEnv(repo);
    fs.mkdirSync(src);
    await makeTree(src);
    fs.mkdirSync(path.join(src, 'extra'));
    fs.writeFileSync(path.join(src, longFirst), pseudoRandom(1, 'long-first', 3000));
    fs.linkSync(path.join(src, longFirst), path.join(src, longSecond));
    fs.writeFileSync(path.join(src, 'extra/huge-ids'), 'ids');
    fs.chownSync(path.join(src, 'extra/huge-ids'), 4_000_000_000, 4_000_000_001);
    fs.utimesSync(path.join(src, 'extra'), 1_700_000_000, 1_700_000_000);
    assert.equal(scrate(['init'], env).code, 0);
    const b = scrate(['backup', '--json', src], env);
    assert.equal(b.code, 0, b.stderr);
    snapshot = backupSnapshotId(b.stdout);
  });
  after(() => tmp?.cleanup());

  test('tar to standard output: GNU tar extracts the tree exactly, holes, links, devices and owners included', () => {
    const out = path.join(tmp.dir, 'tar-out');
    fs.mkdirSync(out);
    const r = pipeline(`${q(SCRATE)} dump ${snapshot} ${q(src)} | tar -x --same-owner --numeric-owner --same-permissions -C ${q(out)}`, env);
    assert.equal(r.code, 0, r.stderr);
    const extracted = path.join(out, src);
    assert.deepEqual(differences(src, extracted), []);
    // GNU tar made the holes: the 64 MiB file allocates about its 68 KiB of data.
    const sparse = fs.statSync(path.join(extracted, TREE.sparse.toString()));
    assert.equal(sparse.size, 64 * MiB);
    assert.ok(sparse.blocks * 512 < MiB, `holes.img allocates ${sparse.blocks * 512} bytes`);
    assert.equal(fs.statSync(path.join(extracted, TREE.allHole.toString())).blocks, 0);
    assert.equal(fs.statSync(path.join(extracted, longSecond)).nlink, 2);
    assert.equal(fs.statSync(path.join(extracted, TREE.trio[0]!.toString())).nlink, 3);
  });

  test('tar members: GNU headers, long names in ././@LongLink, hard links, sparse members, whole records', () => {
    const target = path.join(tmp.dir, 'tree.tar');
    const r = scrate(['dump', '--archive', 'tar', '--target', target, snapshot, src], env);
    assert.equal(r.code, 0, r.stderr);
    const archive = fs.readFileSync(target);
    assert.equal(archive.length % 10240, 0, 'whole 10 KiB records');
    assert.ok(archive.subarray(-1024).every((b) => b === 0), 'two zero blocks at the end');
    const members = tarMembers(archive);
    assert.deepEqual(sortedHex(members.map((m) => m.name)), sortedHex(expectedNames(src)));
    const byName = new Map(members.map((m) => [m.name.toString('latin1'), m]));
    const member = (rel: string | Buffer) => byName.get(Buffer.concat([Buffer.from(src.slice(1) + '/'), Buffer.from(rel)]).toString('latin1'))!;
    assert.equal(member(TREE.sparse).type, 'S');
    // Only the blocks with data: at most the three 4 KiB blocks around them, at least the data itself.
    const stored = Number(member(TREE.sparse).size);
    assert.ok(stored >= 4096 + 300 + 64 * 1024 && stored <= 4096 + 4096 + 64 * 1024, `holes.img stores ${stored} bytes`);
    assert.equal(member(TREE.allHole).type, 'S');
    assert.equal(member(TREE.fifo).type, '6');
    assert.equal(member(TREE.charDevice).type, '3');
    assert.equal(member(TREE.blockDevice).type, '4');
    assert.equal(member('symlinks/long-target').type, '2');
    assert.equal(member(TREE.large).size, BigInt(9 * MiB + 12345));
    // The first name of a hard-linked file in walk order carries the content, the others link to it.
    assert.deepEqual([member(longFirst).type, member(longSecond).type], ['0', '1']);
    assert.ok(archive.includes('././@LongLink'), 'GNU long names');
  });

  test('zip: unzip restores contents, modes, owners, symlinks and times; names are the stored bytes', () => {
    const target = path.join(tmp.dir, 'tree.zip');
    const r = scrate(['dump', '--archive', 'zip', '--target', target, snapshot, src], env);
    assert.equal(r.code, 0, r.stderr);
    const archive = fs.readFileSync(target);
    const special = (st: fs.Stats) => st.isFIFO() || st.isCharacterDevice() || st.isBlockDevice();
    assert.deepEqual(sortedHex(zipNames(archive)), sortedHex(expectedNames(src, (st) => !special(st))));
    const out = path.join(tmp.dir, 'zip-out');
    fs.mkdirSync(out);
    const t = spawnSync('unzip', ['-tq', target], { encoding: 'utf8' });
    assert.equal(t.status, 0, t.stdout + t.stderr);
    // -X: owners, -K: setuid/setgid/sticky bits.
    const u = spawnSync('unzip', ['-q', '-X', '-K', target, '-d', out], { encoding: 'utf8' });
    assert.equal(u.status, 0, u.stdout + u.stderr);
    const unzipRenames = /"names\/(new\\nline|newline|tab\\there|tabhere|f\\xff\\xfe\.bin|f\\xfe\.bin)": only in [ab]/;
    const expected = [
      unzipRenames, // unzip drops control characters and 0xff from names it writes (Info-ZIP's own archives too)
      /sparseness lost/, // zip has no holes
      /hardlinks differ/, // nor hard links: each name has the content
      /only in a \((fifo|char-device|block-device)\)/, // nor special files, which restic leaves out too
      /"times\/(pre-epoch|y2100)": mtime/, // unzip takes times from 1980 (DOS) to 2038 (its 32-bit field)
      /"(owners\/symlink|symlinks\/[^"]+)": mtime/, // unzip leaves a symlink's own time
    ];
    assert.deepEqual(differences(src, path.join(out, src), expected), []);
  });

  test('memory stays bounded: a 384 MiB file through a pipe whose reader waits', () => {
    const big = path.join(tmp.dir, 'big');
    fs.mkdirSync(big);
    const file = path.join(big, 'random.bin');
    const size = 384 * MiB;
    assert.equal(pipeline(`head -c ${size} /dev/zero | openssl enc -aes-128-ctr -nosalt -K ${'2e'.repeat(16)} -iv ${'00'.repeat(16)} > ${q(file)}`, env).code, 0);
    const expected = createHash('sha256').update(fs.readFileSync(file)).digest('hex');
    assert.equal(scrate(['backup', '-q', big], env).code, 0);
    for (const [format, unpack] of [['tar', 'tar -xOf -'], ['zip', `cat > ${q(path.join(tmp.dir, 'big.zip'))} && unzip -p ${q(path.join(tmp.dir, 'big.zip'))}`]] as const) {
      const rss = path.join(tmp.dir, `rss-${format}`);
      // The reader starts after four seconds: without backpressure the whole archive would wait in memory.
      const r = pipeline(`/usr/bin/time -f %M -o ${q(rss)} ${q(SCRATE)} dump --archive ${format} latest ${q(big)} | (sleep 4; ${unpack}) | sha256sum`, env);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.split(' ')[0], expected, `${format}: the content`);
      const peakKiB = Number(fs.readFileSync(rss, 'utf8').trim().split('\n').pop());
      assert.ok(peakKiB * 1024 < size / 2, `${format}: peak RSS ${peakKiB} KiB for a ${size / MiB} MiB file`);
    }
  });

  test('past 8 GiB: base-256 sizes for GNU tar', async () => {
    // Made by hand: 9 GiB of zero blobs around a little data, without reading 9 GiB to back it up.
    const rawRepo = path.join(tmp.dir, 'raw-repo');
    const r = await initRepo(rawRepo);
    const raw = new RawTrees(r);
    const { id: zero } = await r.saveBlob(BlobType.data, Buffer.alloc(8 * MiB));
    const { id: head } = await r.saveBlob(BlobType.data, Buffer.from('head'));
    const content = [head, ...Array.from({ length: 9 * 128 }, () => zero), head].map((id) => id.toString('hex'));
    const size = 9 * GiB + 8;
    await raw.snapshot([raw.node('dense.img', { size, content }), raw.node('sparse.img', { size, content, sparse: true })]);
    const rawEnv = cliEnv(rawRepo, { SCRATE_PASSWORD: PASSWORD });

    const out = path.join(tmp.dir, 'big-out');
    fs.mkdirSync(out);
    const x = pipeline(`${q(SCRATE)} dump latest /sparse.img --archive tar | tar -x -C ${q(out)}`, rawEnv);
    assert.equal(x.code, 0, x.stderr);
    const st = fs.statSync(path.join(out, 'sparse.img'));
    assert.equal(st.size, size);
    assert.ok(st.blocks * 512 < MiB, `allocates ${st.blocks * 512} bytes`);
    const fd = fs.openSync(path.join(out, 'sparse.img'), 'r');
    const [first, last, middle] = [Buffer.alloc(4), Buffer.alloc(4), Buffer.alloc(4)];
    fs.readSync(fd, first, 0, 4, 0);
    fs.readSync(fd, last, 0, 4, size - 4);
    fs.readSync(fd, middle, 0, 4, 5 * GiB);
    fs.closeSync(fd);
    assert.deepEqual([first.toString(), last.toString(), middle], ['head', 'head', Buffer.alloc(4)]);

    // A plain member of 9 GiB: its header's size is base-256, which GNU tar reads back.
    const listing = pipeline(`${q(SCRATE)} dump --archive tar latest /dense.img | head -c 10240 | (tar -tvf - 2>/dev/null; true)`, rawEnv);
    assert.match(listing.stdout, new RegExp(`^-rw-r--r-- .* ${size} .* dense\\.img$`, 'm'));
  });

  test('zip64: a member past 4 GiB and a member after it, which unzip reads back', async () => {
    // The container alone, into a file whose zero chunks are holes: 4 GiB through the CLI take minutes
    // (JavaScript deflate of zero blobs runs at about 80 MiB/s, a stored member reads every blob).
    const zip = path.join(tmp.dir, 'zip64.zip');
    const file = new SparseFile(zip);
    const sink = new Sink(file, new AbortController().signal);
    const stream = new ZipStream(sink);
    const member = { dosDateTime: 0x21000000, externalAttributes: 0o100644 * 0x10000, extra: Buffer.alloc(0) };
    const zeros = Buffer.alloc(64 * MiB);
    const size = 4 * GiB + 5;
    await stream.begin({ ...member, name: Buffer.from('big.bin') });
    for (let left = size; left > 0; left -= zeros.length) await stream.write(zeros.subarray(0, Math.min(left, zeros.length)));
    await stream.close();
    await stream.begin({ ...member, name: Buffer.from('past.txt'), deflateLevel: 1 });
    await stream.write(Buffer.from('past the first 4 GiB\n'));
    await stream.close();
    await stream.end();
    await sink.flush();
    file.end();
    await finished(file);

    const t = spawnSync('unzip', ['-tq', zip], { encoding: 'utf8' });
    assert.equal(t.status, 0, t.stdout + t.stderr);
    const listing = spawnSync('unzip', ['-Z', '-l', zip], { encoding: 'utf8' });
    assert.match(listing.stdout, new RegExp(`^-rw-r--r-- .* ${size} .* stor .* big\\.bin$`, 'm'));
    assert.match(listing.stdout, /^-rw-r--r-- .* 21 .* defN .* past\.txt$/m);
    const past = spawnSync('unzip', ['-p', zip, 'past.txt'], { encoding: 'utf8' });
    assert.equal(past.stdout, 'past the first 4 GiB\n');
    // The directory lies past 4 GiB: the end record defers to the zip64 one.
    const tail = Buffer.alloc(1024);
    const fd = fs.openSync(zip, 'r');
    const length = fs.fstatSync(fd).size;
    fs.readSync(fd, tail, 0, tail.length, length - tail.length);
    fs.closeSync(fd);
    const directory = zipDirectory(tail, length - tail.length);
    assert.deepEqual([directory.count, directory.zip64, directory.at > 4 * GiB], [2, true, true]);
  });

  test('zip64: more than 65535 members, counted in the zip64 end record, all extracted by unzip', async () => {
    const rawRepo = path.join(tmp.dir, 'many-repo');
    const r = await initRepo(rawRepo);
    const raw = new RawTrees(r);
    const count = 70_000;
    const { id } = await r.saveBlob(BlobType.data, Buffer.from('same\n'));
    const files = Array.from({ length: count }, (_, i) => raw.node(`f${String(i).padStart(5, '0')}`, { size: 5, content: [id.toString('hex')] }));
    await raw.snapshot([await raw.dir('many', files)]);
    const rawEnv = cliEnv(rawRepo, { SCRATE_PASSWORD: PASSWORD });

    const zip = path.join(tmp.dir, 'many.zip');
    const d = scrate(['dump', '--archive', 'zip', '--target', zip, 'latest', '/many'], rawEnv);
    assert.equal(d.code, 0, d.stderr);
    const archive = fs.readFileSync(zip);
    assert.equal(archive.readUInt16LE(archive.length - 22 + 10), 0xffff, 'the end record defers to the zip64 one');
    const { count: members, zip64 } = zipDirectory(archive);
    assert.deepEqual([members, zip64], [count + 1, true]);
    assert.equal(zipNames(archive).length, count + 1);

    const out = path.join(tmp.dir, 'many-out');
    fs.mkdirSync(out);
    const u = spawnSync('unzip', ['-q', zip, '-d', out], { encoding: 'utf8' });
    assert.equal(u.status, 0, u.stdout + u.stderr);
    const extracted = fs.readdirSync(path.join(out, 'many'));
    assert.equal(extracted.length, count);
    assert.equal(fs.readFileSync(path.join(out, 'many', extracted[count - 1]!), 'utf8'), 'same\n');
  });

  test('a single file with --archive is an archive of one member; "/" is the whole snapshot', () => {
    const file = `${src}/data/small.txt`;
    const target = path.join(tmp.dir, 'one.tar');
    assert.equal(scrate(['dump', '-a', 'tar', '-t', target, snapshot, file], env).code, 0);
    assert.deepEqual(tarMembers(fs.readFileSync(target)).map((m) => m.name.toString()), [file.slice(1)]);
    // Without --archive a file is its content, as before.
    const plain = spawnSync(SCRATE, ['dump', snapshot, file], { env });
    assert.deepEqual(plain.stdout, fs.readFileSync(file));
    const all = path.join(tmp.dir, 'all.tar');
    assert.equal(scrate(['dump', '-t', all, snapshot, '/'], env).code, 0);
    assert.equal(tarMembers(fs.readFileSync(all))[0]!.name.toString(), `${src.split('/')[1]}/`);
  });

  test('a snapshot of a write-only key: setuid/setgid bits cleared and devices left out, unless --allow-privileged', () => {
    const host = path.join(tmp.dir, 'host');
    fs.mkdirSync(host);
    fs.writeFileSync(path.join(host, 'suid'), '#!/bin/sh\n');
    fs.chmodSync(path.join(host, 'suid'), 0o4755);
    spawnSync('mknod', [path.join(host, 'null'), 'c', '1', '3']);
    fs.writeFileSync(path.join(tmp.dir, 'wo.pass'), 'host password\n');
    assert.equal(scrate(['key', 'add', '--write-only', '--host', 'web-01', '--new-password-file', path.join(tmp.dir, 'wo.pass')], env).code, 0);
    const b = scrate(['backup', '--json', host], cliEnv(repo, { SCRATE_PASSWORD: 'host password' }));
    assert.equal(b.code, 0, b.stderr);
    const id = backupSnapshotId(b.stdout);
    const listing = (...flags: string[]) => pipeline(`${q(SCRATE)} dump ${flags.join(' ')} ${id} ${q(host)} | tar -tvf -`, env);
    const plain = listing();
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stdout, /^-rwxr-xr-x .*\/suid$/m);
    assert.doesNotMatch(plain.stdout, /\/null$/m);
    assert.match(plain.stderr, /setuid\/setgid bits cleared.*write-only key/);
    assert.match(plain.stderr, /null: device node left out/);
    const allowed = listing('--allow-privileged');
    assert.match(allowed.stdout, /^-rwsr-xr-x .*\/suid$/m);
    assert.match(allowed.stdout, /^crw-r--r-- .* 1,3 .*\/null$/m);
  });

  test('errors are one line: a missing path, an unknown format, a special file without --archive, an unwritable target', () => {
    assertCleanError(scrate(['dump', snapshot, `${src}/no/such/file`], env), 1, /is not in the snapshot/);
    assertCleanError(scrate(['dump', '--archive', 'rar', snapshot, src], env), 1, /Allowed choices are tar, zip/);
    assertCleanError(scrate(['dump', snapshot, path.join(src, TREE.fifo.toString())], env), 1, /is a fifo, not a file.*--archive/);
    assertCleanError(scrate(['dump', '--target', path.join(tmp.dir, 'no/such/dir/x.tar'), snapshot, src], env), 1, /cannot dump to .*x\.tar: no such file or directory/);
  });
});

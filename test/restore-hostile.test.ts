import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { check } from '../src/checker/checker.js';
import { ScrateError } from '../src/errors.js';
import { restoreNative } from '../src/native/restore.js';
import type { Repository } from '../src/repository/repository.js';
import { restore, type RestoreOptions } from '../src/restorer/restorer.js';
import type { Snapshot } from '../src/snapshot/snapshot.js';
import { cliEnv, scrate } from './helpers/cli.js';
import { RawTrees, type RawNode } from './helpers/raw-tree.js';
import { initRepo, openRepo, own, scratch } from './helpers/repo.js';
import { makedev } from './helpers/tree.js';

const asRoot = process.getuid?.() === 0;
const needsRoot = { skip: asRoot ? false : 'restores as root (owners, device nodes)' };

/**
 * Every entry at and below `root` (but the names in `skip` right below it) with everything a
 * write could change: type, mode, owner, size, times, inode, link count, and content or target.
 */
function state(root: string, skip: string[] = []): string[] {
  const lines: string[] = [];
  const visit = (rel: string) => {
    const abs = path.join(root, rel);
    const st = fs.lstatSync(abs, { bigint: true });
    const what = st.isFile() ? createHash('sha256').update(fs.readFileSync(abs)).digest('hex') : st.isSymbolicLink() ? `-> ${fs.readlinkSync(abs)}` : '';
    lines.push(`${rel || '.'} ${st.mode.toString(8)} ${st.uid}:${st.gid} size=${st.size} mtime=${st.mtimeNs} ctime=${st.ctimeNs} ino=${st.ino} nlink=${st.nlink} ${what}`);
    if (!st.isDirectory()) return;
    for (const name of fs.readdirSync(abs).sort()) if (rel !== '' || !skip.includes(name)) visit(path.join(rel, name));
  };
  visit('');
  return lines;
}

/** Names the hostile trees use: for --overwrite, each stands in the target already as a symlink out to the sentinel. */
const PLANTED = ['a', 'b', 'c', 'l', 'x', 'victim'];

interface Arena {
  dir: string;
  sentinel: string;
  target: string;
}

/**
 * A scratch directory with a sentinel beside the target: files a hostile tree aims at, owned by
 * someone else with times of their own. The target is empty, or (`planted`) holds symlinks to
 * the sentinel where the tree's entries go, as an earlier restore of a hostile snapshot, or
 * another user, could have left.
 */
function arena(parent: string, name: string, planted: boolean): Arena {
  const dir = path.join(parent, name);
  const sentinel = path.join(dir, 'sentinel');
  const target = path.join(dir, 'target');
  fs.mkdirSync(path.join(sentinel, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(sentinel, 'victim'), 'original');
  fs.writeFileSync(path.join(sentinel, 'sub/inner'), 'inner');
  for (const p of ['victim', 'sub/inner', 'sub', '.']) {
    fs.lchownSync(path.join(sentinel, p), 4242, 4343);
    fs.chmodSync(path.join(sentinel, p), p === 'sub' || p === '.' ? 0o750 : 0o640);
    fs.utimesSync(path.join(sentinel, p), 1_000_000_000, 1_000_000_000);
  }
  fs.mkdirSync(target);
  if (planted) {
    for (const n of PLANTED) fs.symlinkSync(n === 'victim' ? path.join(sentinel, 'victim') : sentinel, path.join(target, n));
    fs.mkdirSync(path.join(target, 'd'));
    fs.symlinkSync(path.join(sentinel, 'victim'), path.join(target, 'd/victim'));
  }
  return { dir, sentinel, target };
}

interface Outcome {
  /** `path: message`, one per error reported. */
  errors: string[];
  notes: string[];
  /** The error the restore stopped with: a ScrateError, one line for the user. */
  stopped?: ScrateError;
}

async function restoreReporting(repo: Repository, snapshot: Snapshot, opts: RestoreOptions): Promise<Outcome> {
  const outcome: Outcome = { errors: [], notes: [] };
  try {
    await restore(own(repo), snapshot, {
      ...opts,
      onError: (p, m) => outcome.errors.push(`${p}: ${m}`),
      onNote: (p, m) => outcome.notes.push(`${p}: ${m}`),
    });
  } catch (err) {
    assert.ok(err instanceof ScrateError, `a one-line error for the user, not ${(err as Error).stack}`);
    outcome.stopped = err;
  }
  for (const line of [...outcome.errors, outcome.stopped?.message ?? '']) assert.doesNotMatch(line, /\n/);
  return outcome;
}

interface HostileCase {
  name: string;
  /** The root tree's nodes, aimed at the sentinel. */
  nodes(raw: RawTrees, sentinel: string): Promise<RawNode[]>;
  /** What the restore reports (an error or the error it stops with); null: nothing. */
  reported: RegExp | null;
  /** Further checks of the target. */
  check?(a: Arena): void;
}

const victim = (raw: RawTrees) => raw.file('victim', 'pwned', { mode: 0o4777 });

const CASES: HostileCase[] = [
  {
    name: 'duplicate names: a symlink out, then a directory of that name',
    nodes: async (raw, s) => [raw.symlink('x', s), await raw.dir('x', [await victim(raw)], { mode: 0o777, uid: 0 })],
    reported: /: contents lost: invalid tree: duplicate name "x"$/,
  },
  {
    name: 'duplicate names: a directory, then a symlink out of that name',
    nodes: async (raw, s) => [await raw.dir('x', [await victim(raw)], { mode: 0o777 }), raw.symlink('x', s)],
    reported: /: contents lost: invalid tree: duplicate name "x"$/,
  },
  {
    name: 'unsorted names',
    nodes: async (raw, s) => [raw.symlink('x', s), await raw.dir('b', [await victim(raw)])],
    reported: /: contents lost: invalid tree: names out of order: "b" after "x"$/,
  },
  ...['..', '.', 'a/b', '', 'x\u0000y', '../sentinel/victim', '/victim'].map(
    (name): HostileCase => ({
      name: `a file named ${JSON.stringify(name)}`,
      nodes: async (raw, s) => [await raw.file(name === '/victim' ? path.join(s, 'victim') : name, 'pwned')],
      reported: /: contents lost: invalid tree: name ".*" is not a single path component$/,
    }),
  ),
  {
    name: 'a directory named ".." holding a file',
    nodes: async (raw) => [await raw.dir('..', [await raw.dir('sentinel', [await victim(raw)])])],
    reported: /: contents lost: invalid tree: name "\.\." is not a single path component$/,
  },
  {
    name: 'a symlink to an absolute path, then entries meant to go through it',
    nodes: async (raw, s) => [raw.symlink('l', s), await raw.file('l/victim', 'pwned'), await raw.dir('l/sub', [await victim(raw)])],
    reported: /: contents lost: invalid tree: name "l\/victim" is not a single path component$/,
  },
  {
    name: 'a hard-link group whose first member is a symlink to outside',
    nodes: async (raw, s) => {
      const group = { inode: '77', device: '5', links: 3 };
      return [raw.symlink('a', path.join(s, 'victim'), group), await raw.file('b', 'pwned', { ...group, mode: 0o600 }), raw.node('c', group)];
    },
    reported: null,
    check: ({ target, sentinel }) => {
      assert.equal(fs.readlinkSync(path.join(target, 'a')), path.join(sentinel, 'victim'));
      const [b, c] = ['b', 'c'].map((n) => fs.lstatSync(path.join(target, n)));
      assert.equal(fs.readFileSync(path.join(target, 'b'), 'utf8'), 'pwned');
      assert.equal(b!.ino, c!.ino, 'b and c are one file');
      assert.notEqual(b!.ino, fs.statSync(path.join(sentinel, 'victim')).ino);
    },
  },
  {
    name: 'a node of an unknown type',
    nodes: async (raw) => [raw.node('victim', { type: 'socket' })],
    reported: /: contents lost: invalid tree: "victim": bad type$/,
  },
];

interface ScratchRepository {
  dir: string;
  repo: Repository;
  raw: RawTrees;
}

/** For the tests of a describe: a scratch directory with a new repository in it. */
function scratchRepository(prefix: string): ScratchRepository {
  const it = {} as ScratchRepository;
  let tmp: ReturnType<typeof scratch>;
  before(async () => {
    tmp = scratch(prefix);
    it.dir = tmp.dir;
    it.repo = await initRepo(path.join(tmp.dir, 'repo'));
    it.raw = new RawTrees(it.repo);
  });
  after(() => tmp.cleanup());
  return it;
}

describe('a hostile snapshot changes nothing outside the target', needsRoot, () => {
  const s = scratchRepository('hostile');

  CASES.forEach((c, i) => {
    for (const overwrite of [false, true]) {
      test(`${c.name}${overwrite ? ', with --overwrite over symlinks out' : ''}`, async () => {
        const a = arena(s.dir, `case-${i}-${overwrite}`, overwrite);
        const { snapshot } = await s.raw.snapshot(await c.nodes(s.raw, a.sentinel));
        const untouched = state(a.dir, ['target']);
        const outcome = await restoreReporting(s.repo, snapshot, { target: a.target, overwrite });
        assert.deepEqual(state(a.dir, ['target']), untouched);
        const reported = [...outcome.errors, ...(outcome.stopped ? [outcome.stopped.message] : [])];
        if (c.reported) assert.ok(reported.some((r) => c.reported!.test(r)), reported.join('\n'));
        else assert.deepEqual(reported, []);
        c.check?.(a);
      });
    }
  });
});

for (const resolution of ['openat2', 'an openat() a component'] as const) {
  describe(`a directory turned into a symlink out while the restore runs (paths resolved with ${resolution})`, needsRoot, () => {
    const s = scratchRepository('swapped');
    before(() => restoreNative.walkPaths(resolution !== 'openat2'));
    after(() => restoreNative.walkPaths(false));

    for (const overwrite of [false, true]) {
      test(`writes, links and metadata meant for it are refused${overwrite ? ' (--overwrite)' : ''}`, async () => {
        const a = arena(s.dir, `swap-${overwrite}`, false);
        // The empty files are created by the walk itself, which reports each at once: c/e comes
        // after b is created and its files planned, before any of them is written.
        const link = { inode: '9', device: '5', links: 2 };
        const { snapshot } = await s.raw.snapshot([
          await s.raw.dir('a', [s.raw.node('e', link)]),
          await s.raw.dir('b', [s.raw.node('link', link), await s.raw.file('new-file', 'pwned'), s.raw.symlink('s', a.sentinel), await s.raw.file('victim', 'pwned', { mode: 0o4777 })], { mode: 0o777 }),
          await s.raw.dir('c', [s.raw.node('e')]),
        ]);
        const untouched = state(a.dir, ['target']);
        const b = path.join(a.target, 'b');
        let swapped = false;
        const outcome = await restoreReporting(s.repo, snapshot, {
          target: a.target,
          overwrite,
          onProgress: (_, p) => {
            if (p !== path.join(a.target, 'c/e')) return;
            // Another user of the target, say: b's contents move on, a symlink out takes its place.
            fs.renameSync(b, `${b}.moved`);
            fs.symlinkSync(a.sentinel, b);
            swapped = true;
          },
        });
        assert.ok(swapped);
        assert.deepEqual(state(a.dir, ['target']), untouched);
        assert.equal(outcome.stopped, undefined);
        // Which of the two depends on where the symlink stands in the path, and on the resolution.
        const refused = /: (cannot set metadata: )?(a symlink|something other than a directory) stands in its path$/;
        for (const e of outcome.errors) assert.match(e, refused);
        assert.deepEqual(outcome.errors.map((e) => path.relative(a.target, e.replace(refused, ''))).sort(), ['b', 'b/link', 'b/new-file', 'b/victim']);
        // What the walk made in b before the swap went where b went.
        assert.equal(fs.readlinkSync(path.join(`${b}.moved`, 's')), a.sentinel);
      });
    }
  });
}

describe('setuid/setgid bits and device nodes of a snapshot from a write-only key', needsRoot, () => {
  const s = scratchRepository('privileged');
  let snapshot: Snapshot;
  before(async () => {
    const { raw } = s;
    ({ snapshot } = await raw.snapshot([
      raw.node('fifo', { type: 'fifo', mode: 0o640, rdev: '0' }),
      raw.node('loop', { type: 'blockdev', mode: 0o660, rdev: makedev(7, 200).toString() }),
      raw.node('null', { type: 'chardev', mode: 0o666, rdev: makedev(1, 3).toString() }),
      await raw.file('setgid', 'x', { mode: 0o2711 }),
      await raw.dir('setgid-dir', [], { mode: 0o2775 }),
      await raw.file('setuid', 'x', { mode: 0o4755 }),
    ]));
  });

  const modes = (target: string) => Object.fromEntries(fs.readdirSync(target).sort().map((n) => [n, (fs.lstatSync(path.join(target, n)).mode & 0o7777).toString(8)]));

  test('are cleared and skipped, with a note', async () => {
    const target = path.join(s.dir, 'untrusted');
    const outcome = await restoreReporting(s.repo, snapshot, { target, untrusted: true });
    assert.deepEqual(outcome.errors, []);
    assert.deepEqual(modes(target), { fifo: '640', 'setgid-dir': '775', setgid: '711', setuid: '755' });
    assert.deepEqual(
      outcome.notes.map((n) => n.slice(target.length + 1)),
      [
        'loop: device node not restored: the snapshot was written with a write-only key (--allow-privileged restores it)',
        'null: device node not restored: the snapshot was written with a write-only key (--allow-privileged restores it)',
        'setgid: setuid/setgid bits cleared, here and wherever else they are: the snapshot was written with a write-only key (--allow-privileged keeps them)',
      ],
    );
  });

  for (const opts of [{ untrusted: true, allowPrivileged: true }, { untrusted: false }]) {
    test(`are restored ${opts.untrusted ? 'when allowed' : 'from a trusted snapshot'}`, async () => {
      const target = path.join(s.dir, `allowed-${opts.untrusted}`);
      const outcome = await restoreReporting(s.repo, snapshot, { target, ...opts });
      assert.deepEqual([...outcome.errors, ...outcome.notes], []);
      assert.deepEqual(modes(target), { fifo: '640', loop: '660', null: '666', 'setgid-dir': '2775', setgid: '2711', setuid: '4755' });
      assert.equal(fs.lstatSync(path.join(target, 'null')).rdev, Number(makedev(1, 3)));
      assert.ok(fs.lstatSync(path.join(target, 'loop')).isBlockDevice());
    });
  }
});

describe('the CLI and check on a tree with duplicate names', needsRoot, () => {
  let tmp: ReturnType<typeof scratch>;
  let env: NodeJS.ProcessEnv;
  let id: string;
  let a: Arena;
  before(async () => {
    tmp = scratch('hostile-cli');
    env = cliEnv(path.join(tmp.dir, 'repo'));
    assert.equal(scrate(['init'], env).code, 0);
    const repo = await openRepo(path.join(tmp.dir, 'repo'), env['SCRATE_PASSWORD']);
    const raw = new RawTrees(repo);
    a = arena(tmp.dir, 'arena', true);
    ({ id } = await raw.snapshot([await raw.dir('etc', [await raw.dir('x', [await victim(raw)]), raw.symlink('x', a.sentinel)])]));
  });
  after(() => tmp.cleanup());

  test('restore --overwrite reports the tree in one line, restores the rest, exits 3', () => {
    const untouched = state(a.dir, ['target']);
    const r = scrate(['restore', id, '--target', a.target, '--overwrite'], env);
    assert.equal(r.code, 3, r.stderr);
    assert.deepEqual(r.stderr.trim().split('\n'), [`warning: ${a.target}/etc: contents lost: invalid tree: duplicate name "x"`, 'warning: 1 item(s) could not be restored; everything else was']);
    assert.deepEqual(state(a.dir, ['target']), untouched);
    assert.ok(fs.lstatSync(path.join(a.target, 'etc')).isDirectory());
  });

  test('check names the tree and the problem', async () => {
    const result = await check(await openRepo(path.join(tmp.dir, 'repo'), env['SCRATE_PASSWORD'], { index: false }));
    assert.equal(result.errors.length, 1, result.errors.map((e) => e.message).join('\n'));
    const [error] = result.errors;
    assert.match(error!.message, /^tree [0-9a-f]{12} \(writer full\): invalid tree: duplicate name "x"$/);
    assert.equal(error!.kind, 'tree');
    assert.deepEqual(error!.dependents, [{ snapshot: id, path: '/etc' }]);
    const r = scrate(['check'], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^warning: tree [0-9a-f]{12} \(writer full\): invalid tree: duplicate name "x"$/m);
    assert.match(r.stderr, new RegExp(`^warning:   needed by snapshot ${id.slice(0, 8)}: /etc$`, 'm'));
  });
});

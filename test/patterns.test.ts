import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { backupCommand } from '../src/cli/commands/backup.js';
import { restoreCommand } from '../src/cli/commands/restore.js';
import { PATTERN_SYNTAX } from '../src/filter/syntax.js';
import { listSnapshots } from '../src/snapshot/snapshot.js';
import { walkTree } from '../src/tree/walk.js';
import { assertCleanError, cliEnv, scrate } from './helpers/cli.js';
import { openRepo, scratch } from './helpers/repo.js';

/** A case of cases.json with what restic 0.14 made of it, recorded by test/fixtures/patterns/make-fixture.sh. */
interface Case {
  name: string;
  command: 'backup' | 'restore';
  /** {root}: the tree's absolute path; {files}: where the case's files are. */
  args: string[];
  env?: Record<string, string>;
  files?: Record<string, string>;
  exit: number;
  /** Stored or restored, relative to the root ('.' for it). */
  paths: string[];
}

const fixture = (name: string) => fileURLToPath(new URL(`../../test/fixtures/patterns/${name}`, import.meta.url));
const { cases } = JSON.parse(fs.readFileSync(fixture('restic-results.json'), 'utf8')) as { cases: Case[] };

/** The tree tree.tsv describes, as make-fixture.sh builds it. */
function buildTree(root: string): void {
  fs.mkdirSync(root);
  for (const line of fs.readFileSync(fixture('tree.tsv'), 'utf8').split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const [kind, rel, arg] = line.split('\t') as [string, string, string];
    const at = path.join(root, rel);
    if (kind === 'd') fs.mkdirSync(at);
    else if (kind === 'f') fs.writeFileSync(at, 'x'.repeat(Number(arg)));
    else if (kind === 't') fs.writeFileSync(at, arg.replaceAll('\\n', '\n'));
    else if (kind === 'l') fs.symlinkSync(arg, at);
    else throw new Error(`tree.tsv: unknown kind ${kind}`);
  }
}

/** Absolute paths relative to the root ('.' for it), those above it left out; any other stays as it is, to fail. */
function relativeToRoot(paths: Iterable<string>, root: string): string[] {
  const out: string[] = [];
  for (const p of paths) {
    if (p === root) out.push('.');
    else if (p.startsWith(root + '/')) out.push(p.slice(root.length + 1));
    else if (!root.startsWith(p + '/')) out.push(p);
  }
  return out;
}

/**
 * Paths with the directories that hold them, sorted. restic stores a source given as a relative
 * path (by --files-from, say) as it is, at the top of the snapshot: the fixture has no node for
 * the root then, where scrate stores the absolute path and has one.
 */
function withDirectories(paths: string[]): string[] {
  const out = new Set<string>();
  for (let p of paths) {
    for (; p !== '.' && p !== '/'; p = path.dirname(p)) out.add(p);
    out.add('.');
  }
  return [...out].sort();
}

/** Every path below `dir`, as '/' and the path below it (symlinks not followed). */
function listDir(dir: string, below = ''): string[] {
  return fs.readdirSync(path.join(dir, below), { withFileTypes: true }).flatMap((e) => {
    const rel = `${below}/${e.name}`;
    return [rel, ...(e.isDirectory() ? listDir(dir, rel) : [])];
  });
}

describe('patterns, compared with what restic 0.14 stored and restored on the same tree', () => {
  const tmp = scratch('patterns');
  const root = path.join(tmp.dir, 'root');
  const repoDir = path.join(tmp.dir, 'repo');
  const env = cliEnv(repoDir);
  // The restore cases restore this snapshot of the whole tree.
  before(() => {
    buildTree(root);
    for (const args of [['init'], ['backup', '--tag', 'full', root]]) {
      const r = scrate(args, env);
      assert.equal(r.code, 0, r.stderr);
    }
  });
  after(() => tmp.cleanup());

  /** The paths of the snapshot tagged `tag`. */
  async function stored(tag: string): Promise<string[]> {
    const repo = await openRepo(repoDir, 'cli test password');
    const found = (await listSnapshots(repo)).filter((e) => e.snapshot.tags.includes(tag));
    assert.equal(found.length, 1, `one snapshot tagged ${tag}`);
    const paths: string[] = [];
    for await (const { path: parts } of walkTree(repo.reader(found[0]!.writer), Buffer.from(found[0]!.snapshot.tree, 'hex'))) {
      paths.push('/' + parts.map((p) => p.toString()).join('/'));
    }
    return paths;
  }

  cases.forEach((c, i) => {
    test(`${c.command}: ${c.name}`, async () => {
      const files = path.join(tmp.dir, `files-${i}`);
      fs.mkdirSync(files);
      const substitute = (s: string) => s.replaceAll('{root}', root).replaceAll('{files}', files);
      for (const [name, text] of Object.entries(c.files ?? {})) fs.writeFileSync(path.join(files, name), substitute(text));
      const args = c.args.map(substitute);
      const caseEnv = { ...env, ...c.env };
      const target = path.join(tmp.dir, `restore-${i}`);
      const r =
        c.command === 'backup'
          ? scrate(['backup', '--tag', `case-${i}`, ...args], caseEnv, { cwd: root })
          : scrate(['restore', 'latest', '--tag', 'full', '--target', target, ...args], caseEnv, { cwd: root });
      if (c.exit !== 0) {
        assertCleanError(r, c.exit, /invalid pattern|mutually exclusive/);
        return;
      }
      assert.equal(r.code, 0, r.stderr);
      const paths = c.command === 'backup' ? await stored(`case-${i}`) : fs.existsSync(target) ? listDir(target) : [];
      assert.deepEqual(withDirectories(relativeToRoot(paths, root)), withDirectories(c.paths));
    });
  });

  test('below SNAPSHOT:subpath, an anchored pattern starts at the subpath, as restic\'s SNAPSHOT:subfolder', () => {
    const target = path.join(tmp.dir, 'restore-subpath');
    const r = scrate(['restore', `latest:${root}/docs`, '--tag', 'full', '--target', target, '--include', '/adduser/examples/*.conf'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(listDir(target).sort(), ['/adduser', '/adduser/examples', '/adduser/examples/adduser.conf']);
  });

  test('--files-from - reads standard input', async () => {
    const r = scrate(['backup', '--tag', 'stdin-list', '--files-from', '-'], env, { cwd: root, input: 'docs/*.md\n', stdio: ['pipe', 'pipe', 'pipe'] });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(withDirectories(relativeToRoot(await stored('stdin-list'), root)), ['.', 'docs', 'docs/readme.md']);
  });

  test('a glob of --files-from that matches nothing is named', () => {
    const list = path.join(tmp.dir, 'globs');
    fs.writeFileSync(list, 'docs/*.md\nnothing-here*\n');
    const r = scrate(['backup', '--files-from', list], env, { cwd: root });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /pattern "nothing-here\*" does not match any files, skipping/);
  });

  test('a tag file without its signature is named, its directory kept', () => {
    const r = scrate(['backup', '--exclude-caches', '--tag', 'fake', root], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /fakecache\/CACHEDIR\.TAG: exclusion tag file too short for its signature; directory kept/);
  });

  test('the manual describes every option that takes patterns or names files', () => {
    const commands = [backupCommand, restoreCommand].map((make) => make(() => assert.fail('not run')));
    const options = commands.flatMap((c) => c.options.map((o) => o.long!)).filter((o) => /exclude|include|files-from/.test(o));
    assert.ok(options.length >= 13);
    for (const o of options) assert.ok(PATTERN_SYNTAX.includes(o), o);
  });

  test('malformed files of names are refused in one line', () => {
    const raw = path.join(tmp.dir, 'raw');
    fs.writeFileSync(raw, 'docs\0src');
    assertCleanError(scrate(['backup', '--files-from-raw', raw], env), 1, /not ended by a NUL byte/);
    assertCleanError(scrate(['backup', '--files-from', path.join(tmp.dir, 'absent')], env), 1, /cannot read file list .*absent: no such file/);
    assertCleanError(scrate(['backup', '--exclude-larger-than', 'big', root], env), 1, /not a size/);
  });
});

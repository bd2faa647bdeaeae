import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { assertCleanError, cliEnv, jsonLines, jsonMessage, SCRATE, scrate } from './helpers/cli.js';
import { scratch } from './helpers/repo.js';

type Message = Record<string, unknown>;

/** What restic 0.14 printed on a tree like this test's (make-fixture.sh beside it). */
interface Fixture {
  backup: Message[];
  backup_verbose: Message[];
  snapshots: Message[];
  ls: Message[];
  forget: Message[];
  /** The output of backup-wrapper.sh run against restic. */
  wrapper: string;
}

const fixtures = fileURLToPath(new URL('../../test/fixtures/json/', import.meta.url));
const restic = JSON.parse(fs.readFileSync(path.join(fixtures, 'restic-0.14.json'), 'utf8')) as Fixture;

function jsonType(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

/** Every name the messages use, with the JSON types seen under it. */
function shape(messages: Message[]): Map<string, Set<string>> {
  const names = new Map<string, Set<string>>();
  for (const m of messages) for (const [k, v] of Object.entries(m)) names.set(k, (names.get(k) ?? new Set()).add(jsonType(v)));
  return names;
}

/**
 * scrate's messages have every name restic's have (and `alsoFromSource`, names restic's source
 * has that its run did not print), each with one of restic's types. Names scrate adds are
 * allowed: they are checked for restic's style separately.
 */
function assertLikeRestic(what: string, ours: Message[], theirs: Message[], alsoFromSource: Record<string, string> = {}, leftOut: string[] = []): void {
  assert.ok(ours.length > 0 && theirs.length > 0, `${what}: messages on both sides`);
  const expected = shape(theirs);
  for (const [k, t] of Object.entries(alsoFromSource)) expected.set(k, new Set([t]));
  const got = shape(ours);
  for (const [name, types] of expected) {
    if (leftOut.includes(name)) continue;
    assert.ok(got.has(name), `${what}: restic's ${name} is missing from ${JSON.stringify(ours[0])}`);
    for (const t of got.get(name)!) assert.ok(types.has(t), `${what}.${name}: ${t}, restic's is ${[...types].join('/')}`);
  }
}

/** Every name in a message, nested ones included: scrate's own must look like restic's. */
function allNames(v: unknown, into: Set<string> = new Set()): Set<string> {
  if (Array.isArray(v)) for (const x of v) allNames(x, into);
  else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      into.add(k);
      allNames(x, into);
    }
  }
  return into;
}

/** Berlin's offset now, as RFC 3339 writes it: the snapshots of this test are made now. */
function berlinOffset(): string {
  const name = new Intl.DateTimeFormat('en', { timeZone: 'Europe/Berlin', timeZoneName: 'longOffset' }).formatToParts(new Date()).find((p) => p.type === 'timeZoneName')!.value;
  return name.replace('GMT', '');
}

const ofType = (messages: Message[], type: string) => messages.filter((m) => m.message_type === type);

describe('--json: restic\'s messages, names and types', () => {
  let tmp: ReturnType<typeof scratch>;
  let src: string;
  let env: NodeJS.ProcessEnv;
  /** Every message scrate printed in these tests, for the check of names. */
  const seen: Message[] = [];
  const run = (args: string[], code = 0) => {
    const r = scrate(args, env);
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    for (const out of [r.stdout, r.stderr]) if (out.startsWith('{') || out.startsWith('[')) seen.push(...jsonLines(out).flat());
    return r;
  };

  before(() => {
    tmp = scratch('json');
    src = path.join(tmp.dir, 'src');
    // The fixture's tree: a file, an empty file, a directory, a symlink and a fifo.
    fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(src, 'file'), 'hello\n');
    fs.writeFileSync(path.join(src, 'empty'), '');
    fs.writeFileSync(path.join(src, 'sub/inner'), 'deeper\n');
    for (const f of ['file', 'empty', 'sub/inner']) fs.chmodSync(path.join(src, f), 0o644);
    fs.chmodSync(path.join(src, 'sub'), 0o755);
    fs.chmodSync(src, 0o755);
    fs.symlinkSync('file', path.join(src, 'link'));
    execFileSync('mkfifo', ['-m', '644', path.join(src, 'fifo')]);
    env = cliEnv(path.join(tmp.dir, 'repo'), { TZ: 'Europe/Berlin', XDG_CACHE_HOME: path.join(tmp.dir, 'cache') });
    run(['init']);
  });
  after(() => tmp.cleanup());

  test('backup: status lines and one summary, with restic\'s names; --tag a,b is two tags', () => {
    const messages = jsonLines(run(['backup', '--json', '--tag', 'a,b', '--tag', 'c', src]).stdout);
    assert.deepEqual([...new Set(messages.map((m) => m.message_type))], ['status', 'summary']);
    assert.equal(messages.at(-1)!.message_type, 'summary');
    // restic leaves out what is zero: error_count is in its source.
    assertLikeRestic('status', ofType(messages, 'status'), ofType(restic.backup, 'status'), { error_count: 'number' });
    // data_added_packed came with restic 0.16.
    assertLikeRestic('summary', ofType(messages, 'summary'), ofType(restic.backup, 'summary'), { data_added_packed: 'number' });
    const summary = jsonMessage<Record<string, unknown>>(JSON.stringify(messages.at(-1)), 'summary');
    assert.deepEqual([summary.files_new, summary.files_changed, summary.files_unmodified, summary.dirs_new, summary.total_files_processed], [3, 0, 0, 2, 3]);
    assert.match(String(summary.snapshot_id), /^[0-9a-f]{8}$/);
    const [snapshot] = JSON.parse(run(['snapshots', '--json']).stdout) as Message[];
    assert.equal(snapshot!.short_id, summary.snapshot_id);
    assert.equal(snapshot!.id, summary.full_snapshot_id);
    assert.deepEqual(snapshot!.tags, restic.snapshots[0]!.tags);
    // As filters, restic's tag lists: all tags of one list, any of the lists.
    const listed = (...tags: string[]) => (JSON.parse(run(['snapshots', '--json', ...tags.flatMap((t) => ['--tag', t])]).stdout) as Message[]).length;
    assert.deepEqual([listed('a,c'), listed('x', 'b,c'), listed('a,x'), listed('x')], [1, 1, 0, 0]);
    // The table shows the time JSON gives, local, to the second.
    const table = run(['snapshots']).stdout;
    assert.match(table, new RegExp(`^${summary.snapshot_id}  ${String(snapshot!.time).slice(0, 19).replace('T', ' ')}  `, 'm'));
  });

  test('backup -v: verbose_status for each file and directory, as restic decides new, modified and unchanged', () => {
    fs.appendFileSync(path.join(src, 'file'), 'changed\n');
    const messages = jsonLines(run(['backup', '--json', '-v', src]).stdout);
    const items = ofType(messages, 'verbose_status');
    assertLikeRestic('verbose_status', items, ofType(restic.backup_verbose, 'verbose_status'));
    const actions = (list: Message[], root: string) => new Map(list.filter((m) => String(m.item).startsWith(`${root}/`)).map((m) => [String(m.item).slice(root.length), m.action]));
    const ours = actions(items, src);
    const theirs = actions(ofType(restic.backup_verbose, 'verbose_status'), '/tmp/scrate-json-fixture/src');
    assert.deepEqual(new Set(ours.keys()), new Set(['/file', '/empty', '/sub/inner', '/sub/', '/']));
    for (const [item, action] of theirs) assert.equal(ours.get(item), action, item);
    assert.equal(items.find((m) => m.item === `${src}/file`)!.data_size, fs.statSync(path.join(src, 'file')).size);
  });

  test('snapshots, ls and forget: restic\'s objects; times local, with the offset and nanoseconds', () => {
    const snapshots = JSON.parse(run(['snapshots', '--json']).stdout) as Message[];
    assertLikeRestic('snapshot', snapshots, restic.snapshots);
    const time = new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d{1,9})?${berlinOffset().replace('+', '\\+')}$`);
    for (const sn of snapshots) assert.match(String(sn.time), time);
    for (const sn of restic.snapshots) assert.match(String(sn.time), time);

    const [head, ...nodes] = jsonLines(run(['ls', '--json', 'latest']).stdout);
    assert.equal(head!.struct_type, 'snapshot');
    assertLikeRestic('ls snapshot', [head!], [restic.ls[0]!]);
    assert.deepEqual({ ...head, struct_type: undefined }, { ...snapshots.at(-1), struct_type: undefined });
    // scrate keeps no access times.
    assertLikeRestic('ls node', nodes, restic.ls.slice(1), {}, ['atime']);
    for (const n of nodes) assert.match(String(n.mtime), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?[+-]\d\d:\d\d$/);
    const byName = (list: Message[]) => new Map(list.map((n) => [n.name, n]));
    const theirs = byName(restic.ls.slice(1));
    const ours = byName(nodes);
    for (const name of ['src', 'file', 'empty', 'sub', 'inner', 'link', 'fifo']) {
      const [a, b] = [ours.get(name)!, theirs.get(name)!];
      assert.deepEqual([a.type, a.mode, a.permissions, 'size' in a], [b.type, b.mode, b.permissions, 'size' in b], name);
    }

    const groups = JSON.parse(run(['forget', '--json', '--dry-run', '--keep-last', '1']).stdout) as Message[];
    assertLikeRestic('forget group', groups, restic.forget);
    const listed = (gs: Message[], key: string) => gs.flatMap((g) => g[key] as Message[]);
    assertLikeRestic('forget keep', listed(groups, 'keep'), listed(restic.forget, 'keep'));
    assertLikeRestic('forget remove', listed(groups, 'remove'), listed(restic.forget, 'remove'));
    assertLikeRestic('forget reason', listed(groups, 'reasons'), listed(restic.forget, 'reasons'));
    // The same objects as `snapshots --json`.
    assert.deepEqual([...listed(groups, 'keep'), ...listed(groups, 'remove')].sort((a, b) => String(a.time).localeCompare(String(b.time))), snapshots);
  });

  test('a missing source among several: an error line, the rest saved, exit 3; a missing only source: exit 1', () => {
    const gone = path.join(tmp.dir, 'gone');
    const r = run(['backup', '--json', src, gone], 3);
    const [error, exit, ...more] = jsonLines(r.stderr);
    // As restic 0.16 prints them (restic 0.14 printed its errors as {}).
    assert.deepEqual(error, { message_type: 'error', error: { message: 'no such file or directory' }, during: 'archival', item: gone });
    assert.deepEqual(exit, { message_type: 'exit_error', code: 3, message: 'warning: 1 source(s) could not be read; the snapshot is incomplete' });
    assert.deepEqual(more, []);
    assert.equal(jsonMessage<{ error_count: number }>(r.stdout, 'summary').error_count, 1);
    const latest = (JSON.parse(run(['snapshots', '--json']).stdout) as Message[]).at(-1)!;
    assert.deepEqual(latest.paths, [src]);

    const only = run(['backup', '--json', gone], 1);
    assert.equal(only.stdout, '');
    assert.deepEqual(jsonLines(only.stderr), [{ message_type: 'exit_error', code: 1, message: `cannot back up ${gone}: no such file or directory` }]);
    assertCleanError(scrate(['backup', gone, path.join(tmp.dir, 'gone too')], env), 1, /^scrate: cannot back up any of the paths/);
    const text = scrate(['backup', src, gone], env);
    assert.equal(text.code, 3);
    assert.equal(text.stderr, `warning: ${gone}: no such file or directory\nwarning: 1 source(s) could not be read; the snapshot is incomplete\n`);
  });

  test('restore and check: restic\'s status and summary', () => {
    const target = path.join(tmp.dir, 'restored');
    const messages = jsonLines(run(['restore', '--json', `latest:${src}`, '--target', target]).stdout);
    assert.deepEqual([...new Set(messages.map((m) => m.message_type))], ['status', 'summary']);
    // restic 0.16's restore messages (internal/ui/restore/json.go); restic 0.14 had none.
    const counts = { total_files: 0, files_restored: 0, total_bytes: 0, bytes_restored: 0 };
    assertLikeRestic('restore status', ofType(messages, 'status'), [{ message_type: 'status', seconds_elapsed: 0, percent_done: 1, ...counts }]);
    assertLikeRestic('restore summary', ofType(messages, 'summary'), [{ message_type: 'summary', seconds_elapsed: 0, ...counts }]);
    const files = ['file', 'empty', 'sub/inner'].map((f) => fs.statSync(path.join(src, f)).size);
    const summary = jsonMessage<Record<string, number>>(JSON.stringify(messages.at(-1)), 'summary');
    assert.deepEqual([summary.files_restored, summary.total_files, summary.bytes_restored, summary.total_bytes], [3, 3, files[0]! + files[1]! + files[2]!, files[0]! + files[1]! + files[2]!]);

    const check = jsonLines(run(['check', '--json']).stdout);
    // restic 0.17's check summary (cmd/restic/cmd_check.go).
    assert.deepEqual(
      check.map((m) => [m.message_type, m.num_errors, m.broken_packs, m.suggest_repair_index, m.suggest_prune]),
      [['summary', 0, [], false, false]],
    );
  });

  test('a restic wrapper script runs unchanged (RESTIC renamed SCRATE) and reads the summary', () => {
    const more = path.join(tmp.dir, 'more');
    fs.mkdirSync(more);
    fs.writeFileSync(path.join(more, 'new'), 'more\n');
    const line = /^snapshot ([0-9a-f]{8}): (\d+) new files, (\d+) bytes added$/;
    assert.match(restic.wrapper, line);
    const out = execFileSync('bash', [path.join(fixtures, 'backup-wrapper.sh'), more], { env: { ...env, PATH: `${path.dirname(SCRATE)}:${env['PATH']}` }, encoding: 'utf8' });
    const [, id, filesNew, added] = line.exec(out.trim()) ?? assert.fail(`wrapper printed ${out}`);
    const latest = (JSON.parse(run(['snapshots', '--json']).stdout) as { short_id: string; summary: { files_new: number; data_added: number } }[]).at(-1)!;
    assert.deepEqual([id, Number(filesNew), Number(added)], [latest.short_id, 1, latest.summary.data_added]);
    assert.ok(latest.summary.data_added > 0);
  });

  test('every name scrate adds is in restic\'s style (snake_case), in the other commands\' JSON too', () => {
    for (const args of [['key', 'list'], ['prune', '--dry-run'], ['repair', 'index'], ['unlock']]) run([...args, '--json']);
    const names = allNames(seen);
    assert.ok(names.size > 60, `${names.size} names seen`);
    for (const name of names) assert.match(name, /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/);
  });
});

describe('--json ls of a large tree through a pipe', () => {
  let tmp: ReturnType<typeof scratch>;
  let env: NodeJS.ProcessEnv;
  let expected: number;

  before(() => {
    tmp = scratch('json-large');
    const root = path.join(tmp.dir, 'big');
    for (let d = 0; d < 100; d++) {
      fs.mkdirSync(path.join(root, `d${d}`), { recursive: true });
      for (let f = 0; f < 500; f++) fs.writeFileSync(path.join(root, `d${d}`, `f${f}`), '');
    }
    // The snapshot line, the directories from / down to the tree, and its 50,100 entries.
    expected = 1 + root.split('/').length - 1 + 100 * 501;
    // Status lines every 50 ms: the backup of 50,000 files lasts longer than that anywhere.
    env = cliEnv(path.join(tmp.dir, 'repo'), { XDG_CACHE_HOME: path.join(tmp.dir, 'cache'), SCRATE_PROGRESS_FPS: '20' });
    assert.equal(scrate(['init'], env).code, 0);
    const r = scrate(['backup', '--json', root], env);
    assert.equal(r.code, 0, r.stderr);
    const status = jsonLines(r.stdout).filter((m) => m.message_type === 'status');
    // While it runs: what is done so far of the total the scan beside it counted, and the file
    // being read; at the end, everything.
    const running = status.slice(0, -1);
    assert.ok(running.some((m) => (m.current_files as string[]).length >= 1 && (m.files_done as number) < 50_000), `status lines while running: ${JSON.stringify(running.slice(-3))}`);
    assert.ok(running.some((m) => (m.total_files as number) > 0 && (m.percent_done as number) < 1), `totals while running: ${JSON.stringify(running.slice(-3))}`);
    assert.deepEqual([status.at(-1)!.percent_done, status.at(-1)!.files_done, status.at(-1)!.total_files], [1, 50_000, 50_000]);
  });
  after(() => tmp.cleanup());

  // scrate once exited before its output had drained into the pipe: jq saw the first 64 KiB or so.
  test('`scrate --json ls latest | jq` parses every entry, every time (50 runs)', () => {
    const counts = execFileSync('bash', ['-c', 'seq 50 | xargs -P 4 -I{} bash -c \'set -o pipefail; "$SCRATE" --json ls latest | jq -s length\''], { env: { ...env, SCRATE }, encoding: 'utf8' });
    assert.deepEqual(counts.trim().split('\n').map(Number), Array(50).fill(expected));
  });
});

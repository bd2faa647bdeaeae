import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { displayName } from '../src/tree/node.js';
import { cliEnv, jsonLines, SCRATE } from './helpers/cli.js';
import { scratch } from './helpers/repo.js';

/** Names that would drive a terminal or forge output lines if printed raw. */
const NAMES: Buffer[] = [
  'osc-\x1b]0;pwned\x07',
  'clear-\x1b[2J',
  'line\nforged',
  'cr\rover',
  'tab\there',
  'del\x7f',
  'c1-\u009b31m',
  'bidi-\u202egpj.exe',
].map((n) => Buffer.from(n));
const NOT_UTF8 = Buffer.from([0x62, 0x61, 0x64, 0x2d, 0xff, 0xfe]); // "bad-" and two bytes no UTF-8 starts with
const LINK = 'link-\x1b[31m';
const LINK_TARGET = 'target-\x1b]8;;http://example.invalid\x07';
const SOCKET = 'sock-\x1b[1m';
const TAG = 'tag-\x1b[5m';
const HOST = 'host\rforged';

interface Output {
  code: number;
  stdout: Buffer;
  stderr: Buffer;
}

/** scrate with its output as bytes: a name that is not UTF-8 must not be smoothed over by decoding. */
function run(args: string[], env: NodeJS.ProcessEnv): Output {
  const r = spawnSync(SCRATE, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

/** Nothing a terminal acts on: no C0 control but the line end, no DEL, no C1 control, no bidi override; UTF-8 throughout. */
function assertInert(out: Buffer, what: string): void {
  const bad = [...out].findIndex((b) => (b < 0x20 && b !== 0x0a) || b === 0x7f);
  assert.equal(bad, -1, `${what}: raw control byte in ${JSON.stringify(out.toString())}`);
  assert.ok(isUtf8(out), `${what}: bytes that are not UTF-8`);
  assert.doesNotMatch(out.toString(), /[\u0080-\u009f\u202a-\u202e\u2066-\u2069]/, what);
}

function assertRun(r: Output, what: string, code = 0): { stdout: string; stderr: string } {
  assert.equal(r.code, code, `${what}: ${r.stderr.toString()}`);
  assertInert(r.stdout, `${what} stdout`);
  assertInert(r.stderr, `${what} stderr`);
  return { stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

describe('displayName', () => {
  test('printable names are shown as they are', () => {
    for (const name of ['plain.txt', 'with space', 'quote"and\\backslash', 'café', '日本語', '🙂']) {
      assert.equal(displayName(Buffer.from(name)), name);
      assert.equal(displayName(name), name);
    }
  });

  test('names with unprintable characters or bytes that are not UTF-8 are quoted, with escapes', () => {
    assert.equal(displayName(Buffer.from('a\x1b[2Jb')), '"a\\x1b[2Jb"');
    assert.equal(displayName('line\nforged\r\t'), '"line\\nforged\\r\\t"');
    assert.equal(displayName('del\x7f"\\'), '"del\\x7f\\"\\\\"');
    assert.equal(displayName('c1\u009b bidi\u202e'), '"c1\\u009b bidi\\u202e"');
    assert.equal(displayName('nbsp\u00a0'), '"nbsp\\u00a0"');
    assert.equal(displayName(NOT_UTF8), '"bad-\\xff\\xfe"');
    // Valid sequences among invalid bytes stay readable; a truncated one is bytes.
    assert.equal(displayName(Buffer.concat([Buffer.from('é\n'), Buffer.from([0xc3])])), '"é\\n\\xc3"');
    assert.equal(displayName(Buffer.from([0xed, 0xa0, 0x80])), '"\\xed\\xa0\\x80"', 'an encoded surrogate is not UTF-8');
  });
});

describe('names with control characters in plain output', () => {
  let tmp: ReturnType<typeof scratch>;
  let repo: string;
  let src: string;
  let env: NodeJS.ProcessEnv;
  const inSrc = (name: Buffer | string) => Buffer.concat([Buffer.from(`${src}/`), Buffer.from(name)]);

  before(() => {
    tmp = scratch('escaping');
    repo = path.join(tmp.dir, 'repo');
    src = path.join(tmp.dir, 'src');
    fs.mkdirSync(src);
    for (const name of [...NAMES, NOT_UTF8]) fs.writeFileSync(inSrc(name), `content of ${name.toString('hex')}\n`);
    fs.symlinkSync(LINK_TARGET, inSrc(LINK));
    env = cliEnv(repo);
    assertRun(run(['init'], env), 'init');
  });
  after(() => tmp.cleanup());

  test('backup: notes and errors name paths quoted', async () => {
    // A socket is skipped with a note (shown with -v).
    const server = net.createServer().listen(path.join(src, SOCKET));
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const { stderr } = assertRun(run(['-v', 'backup', src, '--tag', TAG, '--host', HOST], env), 'backup');
      assert.ok(stderr.includes(`note: "${src}/sock-\\x1b[1m": socket skipped`), stderr);
    } finally {
      server.close();
    }
    const { stderr } = assertRun(run(['backup', path.join(src, 'gone-\x1b[2J')], env), 'backup of a missing path', 1);
    assert.equal(stderr, `scrate: "cannot back up ${src}/gone-\\x1b[2J: no such file or directory"\n`);
  });

  test('ls and ls -l: one line an entry, names and link targets quoted', () => {
    const lines = assertRun(run(['ls', 'latest', src], env), 'ls').stdout.trimEnd().split('\n');
    assert.equal(lines.length, 1 + NAMES.length + 2, lines.join('\n'));
    for (const shown of ['osc-\\x1b]0;pwned\\x07', 'clear-\\x1b[2J', 'line\\nforged', 'cr\\rover', 'tab\\there', 'del\\x7f', 'c1-\\u009b31m', 'bidi-\\u202egpj.exe', 'bad-\\xff\\xfe']) {
      assert.ok(lines.includes(`"${src}/${shown}"`), `${shown} in ${lines.join('\n')}`);
    }
    const long = assertRun(run(['ls', '-l', 'latest', src], env), 'ls -l').stdout;
    assert.match(long, /^lrwxrwxrwx .* "\S+\/link-\\x1b\[31m" -> "target-\\x1b\]8;;http:\/\/example\.invalid\\x07"$/m);
  });

  test('ls --json keeps the exact names; a name that is not UTF-8 as before, in \\xNN escapes', () => {
    const entries = jsonLines(run(['ls', '--json', 'latest', src], env).stdout.toString()).filter((e) => e.struct_type === 'node') as { name: string; path: string; link_target?: string }[];
    const paths = new Set(entries.map((e) => e.path));
    for (const name of NAMES) assert.ok(paths.has(`${src}/${name.toString()}`), JSON.stringify(name.toString()));
    assert.ok(paths.has(`${src}/bad-\\xff\\xfe`));
    assert.equal(entries.find((e) => e.path === `${src}/bad-\\xff\\xfe`)?.name, 'bad-\\xff\\xfe');
    assert.equal(entries.find((e) => e.path === `${src}/${LINK}`)?.link_target, LINK_TARGET);
  });

  test('snapshots: tags, host and paths quoted; --json exact', () => {
    const { stdout } = assertRun(run(['snapshots'], env), 'snapshots');
    assert.match(stdout, /"host\\rforged" +"tag-\\x1b\[5m"/);
    const [snapshot] = JSON.parse(run(['snapshots', '--json'], env).stdout.toString()) as { hostname: string; tags: string[] }[];
    assert.equal(snapshot!.hostname, HOST);
    assert.deepEqual(snapshot!.tags, [TAG]);
  });

  test('restore: warnings name the files quoted', () => {
    // Without its data packs every file fails, each with a warning.
    const damaged = path.join(tmp.dir, 'damaged');
    fs.cpSync(repo, damaged, { recursive: true });
    const index = fs.readdirSync(path.join(damaged, 'index')).flatMap((id) => JSON.parse(run(['cat', 'index', id], cliEnv(damaged)).stdout.toString()).packs as { id: string; type: string }[]);
    for (const pack of index.filter((p) => p.type === 'data')) fs.rmSync(path.join(damaged, 'data', pack.id.slice(0, 2), pack.id));
    const target = path.join(tmp.dir, 'restored');
    const { stderr } = assertRun(run(['restore', 'latest', '--target', target], cliEnv(damaged)), 'restore', 3);
    assert.ok(stderr.includes(`warning: "${target}${src}/clear-\\x1b[2J": `), stderr);
    assert.ok(stderr.includes(`warning: "${target}${src}/bad-\\xff\\xfe": `), stderr);
    assert.equal(stderr.split('\n').filter((l) => l.startsWith('warning: "')).length, NAMES.length + 1, stderr);
  });
});

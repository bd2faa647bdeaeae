import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { cliEnv, SCRATE, scrate, scrateAsync } from './helpers/cli.js';
import { scratch } from './helpers/repo.js';

/** test/helpers/pty-run.py of this checkout (tests run from dist/test). */
const PTY_RUN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test/helpers/pty-run.py');

interface PtyResult {
  code: number;
  seconds_to_exit: number | null;
  output: string;
  stty_before: string;
  stty_after: string;
}

/** Runs scrate on a real pseudo-terminal and types Ctrl-C once `interruptOn` shows (see pty-run.py). */
function onTerminal(args: string[], env: NodeJS.ProcessEnv, interruptOn: string): PtyResult {
  const spec = { argv: [SCRATE, ...args], env: { ...env, TERM: 'xterm' }, interrupt_on: interruptOn, timeout: 120 };
  const r = spawnSync('python3', [PTY_RUN], { input: JSON.stringify(spec), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as PtyResult;
}

/** Ctrl-C stopped the command at once, said so in one line, and left the terminal as it was; its status line had shown totals. */
function assertStoppedOnTerminal(r: PtyResult): void {
  assert.equal(r.code, 130, r.output);
  assert.ok(r.seconds_to_exit !== null && r.seconds_to_exit < 1, `stopped ${r.seconds_to_exit} s after Ctrl-C`);
  assert.match(r.output, /\d+\.\d%\s+\d+ \/ \d+ files\s+[\d.]+ \w+ \/ [\d.]+ \w+/, 'percent, files and bytes of the totals');
  assert.match(r.output, /scrate: interrupted \(SIGINT\)\r?\n/);
  assert.doesNotMatch(r.output, /^\s+at /m, 'no stack trace');
  assert.equal(r.stty_after, r.stty_before);
}

/** How a signalled run ended. */
interface Stopped {
  code: number | null;
  stderr: string;
  delayMs: number;
}

/**
 * Starts scrate, waits for its lock (the command is under way) and then a random while of up to
 * `maxDelayMs`, and sends `signal`; undefined when the command had ended before that moment.
 */
async function stopAtRandom(args: string[], env: NodeJS.ProcessEnv, repo: string, signal: NodeJS.Signals, maxDelayMs: number): Promise<Stopped | undefined> {
  const child = scrateAsync(args, env);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.resume();
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let done = false;
  void exited.then(() => (done = true));
  const locks = path.join(repo, 'locks');
  while (!done && fs.readdirSync(locks).length === 0) await new Promise((r) => setTimeout(r, 2));
  const delayMs = Math.floor(Math.random() * maxDelayMs);
  await new Promise((r) => setTimeout(r, delayMs));
  if (done) return undefined;
  child.kill(signal);
  return { code: await exited, stderr, delayMs };
}

/** The repository's snapshot IDs. */
function snapshotIds(env: NodeJS.ProcessEnv): string[] {
  const r = scrate(['snapshots', '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { id: string }[]).map((s) => s.id).sort();
}

describe('scrate at run time: signals, terminals, pipes, unreachable servers', () => {
  const tmp = scratch('runtime');
  const repo = path.join(tmp.dir, 'repo');
  // Long enough to be stopped part-way: 192 MiB to read, and small files for the walk.
  const big = path.join(tmp.dir, 'big');
  const env = cliEnv(repo);

  before(() => {
    fs.mkdirSync(path.join(big, 'small'), { recursive: true });
    for (let i = 0; i < 12; i++) fs.writeFileSync(path.join(big, `part${i}`), randomBytes(16 * 1024 * 1024));
    for (let i = 0; i < 2000; i++) fs.writeFileSync(path.join(big, 'small', `f${i}`), randomBytes(1000 + i));
    assert.equal(scrate(['init'], env).code, 0);
  });
  after(() => tmp.cleanup());

  test('Ctrl-C on a terminal during a backup: exit 130 within a second, no lock, no snapshot, the terminal as it was; the status line had shown an ETA', () => {
    const before = snapshotIds(env);
    assertStoppedOnTerminal(onTerminal(['backup', big], env, 'ETA \\d+:\\d\\d'));
    assert.deepEqual(fs.readdirSync(path.join(repo, 'locks')), []);
    assert.deepEqual(snapshotIds(env), before);
  });

  test('Ctrl-C on a terminal during a restore: exit 130 within a second, no lock, the terminal as it was; the status line had shown an ETA', () => {
    const saved = scrate(['backup', big], env);
    assert.equal(saved.code, 0, saved.stderr);
    assertStoppedOnTerminal(onTerminal(['restore', 'latest', '--target', fs.mkdtempSync(path.join(tmp.dir, 'on-terminal-'))], env, 'ETA \\d+:\\d\\d'));
    assert.deepEqual(fs.readdirSync(path.join(repo, 'locks')), []);
  });

  test('SIGINT and SIGTERM at random moments of backup, restore and prune: exit 130 or 143 with one line, no lock, no snapshot; the repository checks clean', async () => {
    const kept = scrate(['backup', big], env);
    assert.equal(kept.code, 0, kept.stderr);
    // Data only this snapshot has: forgetting it gives prune work.
    const only = path.join(tmp.dir, 'only');
    fs.mkdirSync(only);
    for (let i = 0; i < 4; i++) fs.writeFileSync(path.join(only, `part${i}`), randomBytes(16 * 1024 * 1024));
    const victim = scrate(['backup', only], env);
    assert.equal(victim.code, 0, victim.stderr);
    // New data for every backup: each has 64 MiB to store.
    const fresh = () => {
      for (let i = 0; i < 4; i++) fs.writeFileSync(path.join(big, `part${i}`), randomBytes(16 * 1024 * 1024));
      return ['backup', big];
    };
    const restore = () => ['restore', 'latest', '--target', fs.mkdtempSync(path.join(tmp.dir, 'restore-'))];
    const runs = [
      ...(['SIGINT', 'SIGTERM', 'SIGINT', 'SIGTERM'] as const).map((signal) => ({ args: fresh, signal, maxDelayMs: 1000 })),
      ...(['SIGINT', 'SIGTERM', 'SIGINT', 'SIGTERM'] as const).map((signal) => ({ args: restore, signal, maxDelayMs: 600 })),
      ...(['SIGTERM', 'SIGINT'] as const).map((signal) => ({ args: () => ['prune', '--max-unused', '0%'], signal, maxDelayMs: 200 })),
    ];
    let stopped = 0;
    // The moments are drawn at random and a fast machine finishes some runs first: rounds until
    // six were stopped part-way (at most three), so the count does not depend on the machine's speed.
    for (let round = 0; round < 3 && stopped < 6; round++) for (const { args, signal, maxDelayMs } of runs) {
      if (args()[0] === 'prune') {
        const [victimId] = (JSON.parse(scrate(['snapshots', '--json', '--path', only], env).stdout) as { id: string }[]).map((s) => s.id);
        if (victimId) assert.equal(scrate(['forget', victimId], env).code, 0);
      }
      const before = snapshotIds(env);
      const argv = args();
      const r = await stopAtRandom(argv, env, repo, signal, maxDelayMs);
      if (!r) continue; // done before the moment drawn
      const what = `${argv[0]} ${signal} after ${r.delayMs} ms: ${r.stderr}`;
      assert.doesNotMatch(r.stderr, /^\s+at /m, `no stack trace: ${what}`);
      assert.deepEqual(fs.readdirSync(path.join(repo, 'locks')), [], `no lock: ${what}`);
      const after = snapshotIds(env);
      if (r.code === 0) {
        // The signal came as the command saved its result: it stands, and says so by its exit code.
        if (argv[0] === 'backup') assert.equal(after.length, before.length + 1, what);
        continue;
      }
      assert.equal(r.code, signal === 'SIGINT' ? 130 : 143, what);
      assert.match(r.stderr.trim().split('\n').at(-1)!, signal === 'SIGINT' ? /^scrate: interrupted \(SIGINT\)$/ : /^scrate: terminated \(SIGTERM\)$/, what);
      assert.deepEqual(after, before, `no snapshot: ${what}`);
      stopped++;
    }
    assert.ok(stopped >= 6, `${stopped} runs stopped part-way`);
    const check = scrate(['check', '--read-data'], env);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.match(check.stdout, /0 error\(s\)/);
  });
});

describe('scrate output through pipes', () => {
  const tmp = scratch('pipes');
  const env = cliEnv(path.join(tmp.dir, 'repo'));

  before(() => {
    const src = path.join(tmp.dir, 'src');
    // 50,000 files in 250 directories: megabytes of listing, far more than a pipe holds.
    for (let d = 0; d < 250; d++) {
      const dir = path.join(src, `directory-${d}`);
      fs.mkdirSync(dir, { recursive: true });
      for (let f = 0; f < 200; f++) fs.writeFileSync(path.join(dir, `a-file-with-a-longer-name-${f}`), '');
    }
    assert.equal(scrate(['init'], env).code, 0);
    const r = scrate(['backup', src], env);
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => tmp.cleanup());

  /** Runs a shell pipeline with $SCRATE set; its stdout. */
  function shell(script: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = spawn('bash', ['-c', script], { env: { ...env, SCRATE }, stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.on('error', reject);
      child.on('close', () => resolve(out));
    });
  }

  test('`scrate --json ls latest | wc -c` is the whole listing every time (20 runs, four at a time)', async () => {
    const file = path.join(tmp.dir, 'listing.json');
    await shell(`"$SCRATE" --json ls latest > ${file}`);
    const size = fs.statSync(file).size;
    assert.ok(size > 1024 * 1024, `${size} bytes`);
    const lines = Number((await shell('"$SCRATE" ls latest | wc -l')).trim());
    assert.ok(lines >= 50_000, `${lines} entries`);
    for (let round = 0; round < 5; round++) {
      const counts = await Promise.all([0, 1, 2, 3].map(() => shell('"$SCRATE" --json ls latest | wc -c; echo "${PIPESTATUS[0]}"')));
      for (const c of counts) assert.deepEqual(c.trim().split('\n'), [String(size), '0']);
    }
  });

  test('`scrate ls latest | head -1` ends quietly, with the exit code of a closed output (141)', async () => {
    const err = path.join(tmp.dir, 'stderr.txt');
    const out = await shell(`"$SCRATE" ls latest 2>${err} | head -1; echo "\${PIPESTATUS[0]}"; cat ${err}`);
    const [first, code, ...stderr] = out.split('\n');
    assert.match(first!, /^\/\S+$/);
    assert.equal(code, '141');
    assert.deepEqual(stderr.filter((l) => l !== ''), []);
  });

  test('a full disk under standard output: one line in words, exit 1', () => {
    const r = scrate(['ls', 'latest'], env, { stdio: ['ignore', fs.openSync('/dev/full', 'w'), 'pipe'] });
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'scrate: cannot write to standard output: no space left on device\n');
  });
});

test('an S3 endpoint nobody listens on fails within 5 seconds, naming the endpoint', async () => {
  // A port just freed: nothing listens there.
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  const endpoint = `http://127.0.0.1:${port}`;
  const started = Date.now();
  const r = scrate(['snapshots'], cliEnv(`s3:${endpoint}/bucket/repo`, { AWS_ACCESS_KEY_ID: 'id', AWS_SECRET_ACCESS_KEY: 'secret' }));
  const seconds = (Date.now() - started) / 1000;
  assert.ok(seconds < 5, `${seconds} s`);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^scrate: cannot reach s3:${endpoint}/bucket/repo: connection refused`));
  assert.doesNotMatch(r.stderr, /ECONNREFUSED/);
});

test('backup -vv lists every file as new, modified or unchanged, as restic does; -v does not', () => {
  const tmp = scratch('verbose');
  try {
    const src = path.join(tmp.dir, 'src');
    fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(src, 'a'), 'a');
    fs.writeFileSync(path.join(src, 'sub', 'b'), 'b');
    const env = cliEnv(path.join(tmp.dir, 'repo'));
    assert.equal(scrate(['init'], env).code, 0);
    const listed = (args: string[]) => {
      const r = scrate(args, env);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.split('\n').filter((l) => /^(new|modified|unchanged) /.test(l)).sort();
    };
    assert.deepEqual(listed(['backup', '-vv', src]), [`new       ${src}/a`, `new       ${src}/sub/b`]);
    fs.writeFileSync(path.join(src, 'a'), 'changed');
    assert.deepEqual(listed(['backup', '-v', '-v', src]), [`modified  ${src}/a`, `unchanged ${src}/sub/b`]);
    assert.deepEqual(listed(['backup', '-v', src]), []);
  } finally {
    tmp.cleanup();
  }
});

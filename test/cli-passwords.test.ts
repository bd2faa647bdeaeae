import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { assertCleanError, cliEnv, SCRATE, scrate, type RunResult } from './helpers/cli.js';
import { scratch } from './helpers/repo.js';

const EMPTY = /empty password from .*--insecure-no-password/;

/**
 * scrate on a terminal (util-linux `script` gives it one), with `answer` typed at its first
 * prompt; `answer` undefined types nothing, for a run that must not ask.
 */
function onTerminal(args: string[], env: NodeJS.ProcessEnv, answer?: string): Promise<RunResult> {
  const command = [SCRATE, ...args].map((a) => `'${a}'`).join(' ');
  const child = spawn('script', ['-qec', command, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (answer !== undefined && /enter (a )?password/.test(stdout)) {
      child.stdin.write(answer);
      answer = undefined;
    }
  });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr: '' })));
}

describe('empty passwords', () => {
  let tmp: ReturnType<typeof scratch>;
  let repo: string;
  let env: NodeJS.ProcessEnv;
  let noPassword: NodeJS.ProcessEnv;
  const file = (name: string, content: string) => {
    const p = path.join(tmp.dir, name);
    fs.writeFileSync(p, content);
    return p;
  };

  before(() => {
    tmp = scratch('passwords');
    repo = path.join(tmp.dir, 'repo');
    env = cliEnv(repo);
    noPassword = cliEnv(repo, { SCRATE_PASSWORD: undefined });
  });
  after(() => tmp.cleanup());

  test('init refuses an empty password from the environment, a file or a command, and creates nothing', () => {
    for (const value of ['', '\n', '\r\n']) {
      assertCleanError(scrate(['init'], { ...env, SCRATE_PASSWORD: value }), 1, /empty password from SCRATE_PASSWORD/);
    }
    for (const content of ['', '\n']) {
      const pw = file('empty-pw', content);
      assertCleanError(scrate(['--password-file', pw, 'init'], noPassword), 1, /empty password from password file .*empty-pw/);
      assertCleanError(scrate(['init'], { ...noPassword, SCRATE_PASSWORD_FILE: pw }), 1, /empty password from password file/);
    }
    for (const command of ['true', 'echo', "printf '\\n'"]) {
      assertCleanError(scrate(['--password-command', command, 'init'], noPassword), 1, /empty password from the password command/);
    }
    assertCleanError(scrate(['init'], { ...noPassword, SCRATE_PASSWORD_COMMAND: 'true' }), 1, EMPTY);
    assert.ok(!fs.existsSync(repo), 'no repository was created');
  });

  test('an empty password opens nothing either', () => {
    assert.equal(scrate(['init'], env).code, 0);
    assertCleanError(scrate(['snapshots'], { ...env, SCRATE_PASSWORD: '' }), 1, EMPTY);
    assertCleanError(scrate(['--password-file', file('empty', ''), 'snapshots'], noPassword), 1, EMPTY);
    assertCleanError(scrate(['--password-command', 'true', 'snapshots'], noPassword), 1, EMPTY);
  });

  test('the prompt refuses an empty password; with --insecure-no-password nothing is asked', async () => {
    const asked = await onTerminal(['snapshots'], noPassword, '\r');
    assert.equal(asked.code, 1, asked.stdout);
    assert.match(asked.stdout, /enter password for repository/);
    assert.match(asked.stdout, /empty password from the prompt/);
    const none = await onTerminal(['--insecure-no-password', 'snapshots'], noPassword);
    assert.equal(none.code, 12, none.stdout);
    assert.doesNotMatch(none.stdout, /enter password/);
    assert.match(none.stdout, /wrong password/);
  });

  test('key add and key passwd refuse an empty new password', () => {
    for (const content of ['', '\n']) {
      const pw = file('new-empty', content);
      assertCleanError(scrate(['key', 'add', '--new-password-file', pw], env), 1, /empty password from --new-password-file .*new-empty/);
      assertCleanError(scrate(['key', 'passwd', '--new-password-file', pw], env), 1, EMPTY);
    }
    assert.equal(JSON.parse(scrate(['key', 'list', '--json'], env).stdout).length, 1);
  });

  test('--insecure-no-password: init, backup and restore with the empty password', () => {
    const repo2 = path.join(tmp.dir, 'open-repo');
    const src = path.join(tmp.dir, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'note'), 'kept without a password\n');
    const insecure = cliEnv(repo2, { SCRATE_PASSWORD: undefined });
    const run = (args: string[]) => {
      const r = scrate(['--insecure-no-password', ...args], insecure);
      assert.equal(r.code, 0, r.stderr);
      return r;
    };
    run(['init']);
    run(['backup', src]);
    const target = path.join(tmp.dir, 'restored');
    run(['restore', `latest:${src}`, '--target', target]);
    assert.equal(fs.readFileSync(path.join(target, 'note'), 'utf8'), 'kept without a password\n');

    // The empty password is the only one: without the option nothing opens it.
    assertCleanError(scrate(['snapshots'], insecure), 1, /no password given/);
    assertCleanError(scrate(['snapshots'], { ...insecure, SCRATE_PASSWORD: 'guess' }), 12, /wrong password/);
    // A password given beside the option contradicts it; an empty one agrees.
    assertCleanError(scrate(['--insecure-no-password', 'snapshots'], { ...insecure, SCRATE_PASSWORD: 'guess' }), 1, /--insecure-no-password contradicts the password from SCRATE_PASSWORD/);
    for (const empty of ['', '\n']) assert.equal(scrate(['--insecure-no-password', 'snapshots'], { ...insecure, SCRATE_PASSWORD: empty }).code, 0);

    // The option lets a key be given a real password (and an empty one).
    run(['key', 'passwd', '--new-password-file', file('real', 'a real one\n')]);
    assert.equal(scrate(['snapshots'], { ...insecure, SCRATE_PASSWORD: 'a real one' }).code, 0);
    assertCleanError(scrate(['--insecure-no-password', 'snapshots'], insecure), 12, /wrong password/);
  });
});

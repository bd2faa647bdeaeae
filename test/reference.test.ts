import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildProgram } from '../src/cli/main.js';
import { REFERENCE_FILES } from '../src/cli/reference.js';
import { DOCUMENTED_VARIABLES } from '../src/cli/reference/man.js';
import { describeProgram, SUGGESTED_VALUES, type CommandSpec } from '../src/cli/reference/model.js';
import { assertCleanError, cliEnv, scrate, SCRATE } from './helpers/cli.js';
import { scratch } from './helpers/repo.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MAN = path.join(root, 'man/scrate.1');

test('the committed man page and completions match the commands (npm run reference)', () => {
  const program = buildProgram();
  for (const [file, generate] of Object.entries(REFERENCE_FILES)) assert.equal(fs.readFileSync(path.join(root, file), 'utf8'), generate(program), `${file} is stale: run npm run reference`);
});

test('scrate completion prints the committed scripts', () => {
  const env = cliEnv('/nonexistent');
  for (const [shell, file] of [['bash', 'scrate.bash'], ['zsh', '_scrate'], ['fish', 'scrate.fish']]) {
    const r = scrate(['completion', shell!], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, fs.readFileSync(path.join(root, 'completions', file!), 'utf8'));
  }
  assert.equal(scrate(['completion', 'tcsh'], env).code, 1);
});

// Skipped only where groff isn't installed; CI installs it (.ci/run), so there it fails instead.
const groff = spawnSync('groff', ['--version']).status === 0;
test('the man page renders without a warning', { skip: !groff && !process.env['CI'] ? 'groff is not installed' : false }, () => {
  const r = spawnSync('groff', ['-man', '-ww', '-z', MAN], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  assert.equal(r.stderr, '');
});

test('the man page has every section a man page of a backup tool needs', () => {
  const sections = fs.readFileSync(MAN, 'utf8').match(/^\.SH .+$/gm)!.map((l) => l.slice(4));
  for (const s of ['NAME', 'SYNOPSIS', 'GLOBAL OPTIONS', 'COMMANDS', 'PATTERNS', 'JSON OUTPUT', 'ENVIRONMENT', 'FILES', 'EXIT STATUS', 'EXAMPLES']) assert.ok(sections.includes(s), s);
});

/** Every name in `process.env['X']`, `env['X']` or `.env('X')` of the sources. */
function variablesRead(dir: string): string[] {
  const found: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const text = fs.readFileSync(path.join(entry.parentPath, entry.name), 'utf8');
    for (const m of text.matchAll(/(?:env\[|\.env\()'([A-Z][A-Z0-9_]*)'/g)) found.push(m[1]!);
  }
  return [...new Set(found)].sort();
}

test('ENVIRONMENT names every variable scrate reads', () => {
  const read = variablesRead(path.join(root, 'src'));
  assert.ok(read.includes('SCRATE_PASSWORD') && read.includes('XDG_CACHE_HOME'), `the scan finds them: ${read.join(' ')}`);
  for (const name of read) assert.ok(DOCUMENTED_VARIABLES.includes(name), `${name} is read but not in the man page's ENVIRONMENT`);
});

test('each suggested option value is one the option accepts', () => {
  const program = buildProgram();
  for (const [where, values] of Object.entries(SUGGESTED_VALUES)) {
    const [name, flag] = where.split(' ');
    const option = program.commands.find((c) => c.name() === name)!.options.find((o) => o.long === flag)!;
    for (const v of values) assert.doesNotThrow(() => option.parseArg!(v, option.defaultValue), `${where} ${v}`);
  }
});

/** The `scrate …` command lines of a text: each piece of a line between &&, ||, ;, |, > and <, comments cut off. */
function commandLines(text: string): string[][] {
  return text
    .split('\n')
    .flatMap((line) => line.replace(/(?:^|\s)#(?:\s.*)?$/, '').split(/&&|\|\||[;|<>]/))
    .map((part) => /(?:^|\s|bin\/)scrate\s+(\S.*)$/.exec(part.trim())?.[1]?.trim().split(/\s+/))
    .filter((words): words is string[] => words !== undefined);
}

/** Why `words` (after "scrate") is not a command line the definitions accept, if it is not. */
function misfit(program: CommandSpec, words: string[]): string | undefined {
  let cmd = program;
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word === '--') break;
    if (/^-./.test(word)) {
      const flag = word.split('=')[0]!;
      const option = [...cmd.options, ...program.options].find((o) => o.short === flag || o.long === flag);
      if (!option) return `${flag} is not an option of scrate ${cmd.path.join(' ')}`;
      if (option.value && !word.includes('=')) i++;
      continue;
    }
    const sub = cmd.subcommands.find((c) => c.path.at(-1) === word);
    if (sub) cmd = sub;
    else if (cmd.subcommands.length) return `${word} is not a command of scrate ${cmd.path.join(' ')}`;
  }
  return cmd === program ? 'no command' : undefined;
}

test('every scrate command line of the README, docs/AUTOMATION.md and the man page\'s examples has commands and options that exist', () => {
  const program = describeProgram(buildProgram());
  // The code: the man page's .nf blocks, Markdown's fenced ones.
  const man = [...fs.readFileSync(MAN, 'utf8').matchAll(/^\.nf\n([\s\S]*?)^\.fi$/gm)].map((m) => m[1]!.replace(/\\-/g, '-'));
  const markdown = (file: string) => fs.readFileSync(path.join(root, file), 'utf8').split(/^```.*$/m).filter((_, i) => i % 2 === 1);
  const sources: [string, string][] = [['man page', man.join('\n')], ...['README.md', 'docs/AUTOMATION.md'].map((f): [string, string] => [f, markdown(f).join('\n')])];
  for (const [where, text] of sources) {
    const lines = commandLines(text);
    assert.ok(lines.length >= 8, `${where}: ${lines.length} command lines found`);
    for (const words of lines) assert.equal(misfit(program, words), undefined, `${where}: scrate ${words.join(' ')}`);
  }
});

describe('version, help, -p', () => {
  const tmp = scratch('reference');
  const env = cliEnv(path.join(tmp.dir, 'repo'));
  after(() => tmp.cleanup());

  test('scrate version, and --json as restic prints it (node_version, os, arch for go_*)', () => {
    const version = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version as string;
    const text = scrate(['version'], env);
    assert.equal(text.code, 0);
    assert.equal(text.stdout, `scrate ${version} running on Node.js ${process.versions.node} on ${process.platform}/${process.arch}\n`);
    for (const args of [['version', '--json'], ['--json', 'version']]) {
      const r = scrate(args, env);
      assert.equal(r.code, 0);
      assert.equal(r.stdout.split('\n').length, 2, 'one line');
      assert.deepEqual(JSON.parse(r.stdout), { message_type: 'version', version, node_version: process.versions.node, os: process.platform, arch: process.arch });
    }
  });

  test('scrate help follows subcommands; an unknown one is one line', () => {
    assert.match(scrate(['help', 'key', 'add'], env).stdout, /^Usage: scrate key add \[options\]/);
    assert.match(scrate(['help', 'repair', 'index'], env).stdout, /^Usage: scrate repair index/);
    assert.match(scrate(['help'], env).stdout, /^Usage: scrate \[options\] \[command\]/);
    assertCleanError(scrate(['help', 'key', 'nosuch'], env), 1, /unknown command: scrate key nosuch \(`scrate help key` lists the commands\)/);
  });

  test('-p is --password-file', () => {
    const file = path.join(tmp.dir, 'pw');
    fs.writeFileSync(file, 'from the file\n');
    const noPassword = cliEnv(path.join(tmp.dir, 'repo'), { SCRATE_PASSWORD: undefined });
    assert.equal(scrate(['-p', file, 'init'], noPassword).code, 0);
    assert.equal(scrate(['snapshots', '-p', file], noPassword).code, 0);
    assertCleanError(scrate(['-p', path.join(tmp.dir, 'none'), 'snapshots'], noPassword), 1, /cannot read password file/);
  });
});

describe('the recipes of docs/AUTOMATION.md', () => {
  const tmp = scratch('automation');
  after(() => tmp.cleanup());
  const doc = fs.readFileSync(path.join(root, 'docs/AUTOMATION.md'), 'utf8');
  /** The code block of `language` that starts with `start`, with `replace`'s paths made this test's (each must be there). */
  const block = (language: string, start: string, replace: [string, string][] = []) => {
    let text = doc.split(`\`\`\`${language}\n`).find((b) => b.startsWith(start))!.split('```')[0]!;
    for (const [from, to] of replace) {
      assert.ok(text.includes(from), `${from} in the ${start} block`);
      text = text.replaceAll(from, to);
    }
    return text;
  };

  test('the cron job backs up, then forgets and prunes', () => {
    const repo = path.join(tmp.dir, 'repo');
    const [bin, src, pass, excludes] = ['bin', 'src', 'pass', 'excludes'].map((f) => path.join(tmp.dir, f)) as [string, string, string, string];
    fs.mkdirSync(bin);
    fs.symlinkSync(SCRATE, path.join(bin, 'scrate'));
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'kept'), 'k');
    fs.writeFileSync(path.join(src, 'left.o'), 'o');
    fs.writeFileSync(pass, 'automation\n');
    fs.writeFileSync(excludes, '*.o\n');
    const script = path.join(tmp.dir, 'scrate-nightly');
    fs.writeFileSync(script, block('sh', '#!/bin/sh', [['/srv/backup', repo], ['/root/.config/scrate/pass', pass], ['/etc/scrate/excludes', excludes], ['/etc /home /srv', src]]), { mode: 0o700 });
    const env = cliEnv(repo, { SCRATE_PASSWORD: undefined, SCRATE_REPOSITORY: undefined, PATH: `${bin}:${process.env['PATH']}`, XDG_CACHE_HOME: path.join(tmp.dir, 'cache') });
    assert.equal(scrate(['-r', repo, '-p', pass, 'init'], env).code, 0);
    for (let run = 0; run < 2; run++) {
      const r = spawnSync(script, { env, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout + r.stderr, '', 'silent on success');
    }
    // Two snapshots of the same day: --keep-daily keeps the newer, and prune ran after the forget.
    const list = JSON.parse(scrate(['-r', repo, '-p', pass, 'snapshots', '--json'], env).stdout) as unknown[];
    assert.equal(list.length, 1);
    assert.deepEqual(scrate(['-r', repo, '-p', pass, 'ls', 'latest', src], env).stdout.trim().split('\n'), [src, path.join(src, 'kept')]);
  });

  test('the restores of one file and of a directory put them where the text says', () => {
    const repo = path.join(tmp.dir, 'restore-repo');
    const [home, r] = [path.join(tmp.dir, 'home/me'), path.join(tmp.dir, 'r')];
    fs.mkdirSync(path.join(home, 'src'), { recursive: true });
    fs.writeFileSync(path.join(home, 'notes.txt'), 'notes');
    fs.writeFileSync(path.join(home, 'src', 'main.c'), 'int main;');
    const env = cliEnv(repo);
    for (const args of [['init'], ['backup', home]]) assert.equal(scrate(args, env).code, 0);
    const paths: [string, string][] = [['/home/me', home], ['/tmp/r', r]];
    const script = block('sh', 'scrate restore latest:/home/me/notes.txt', paths) + block('sh', 'scrate restore latest:/home/me/src', paths);
    const run = spawnSync('sh', ['-e', '-c', script], { env: { ...env, PATH: `${path.dirname(SCRATE)}:${process.env['PATH']}` }, cwd: tmp.dir, encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(fs.readFileSync(path.join(r, 'notes.txt'), 'utf8'), 'notes');
    assert.equal(fs.readFileSync(path.join(tmp.dir, 'notes.txt'), 'utf8'), 'notes');
    assert.equal(fs.readFileSync(path.join(home, 'src-restored', 'main.c'), 'utf8'), 'int main;');
    assert.equal(fs.readFileSync(path.join(r, home, 'src', 'main.c'), 'utf8'), 'int main;');
    assert.ok(!fs.existsSync(path.join(r, home, 'notes.txt')), '--include restores only what it names');
  });

  // Skipped only where systemd-analyze isn't installed; CI installs it (.ci/run), so there it fails instead.
  const analyze = spawnSync('systemd-analyze', ['--version']).status === 0;
  test('systemd accepts the service and the timer', { skip: !analyze && !process.env['CI'] ? 'systemd-analyze is not installed' : false }, () => {
    const service = path.join(tmp.dir, 'scrate-backup.service');
    const timer = path.join(tmp.dir, 'scrate-backup.timer');
    fs.writeFileSync(service, block('ini', '[Unit]\nDescription=scrate backup\n', [['/usr/local/bin/scrate', SCRATE]]));
    fs.writeFileSync(timer, block('ini', '[Unit]\nDescription=nightly scrate backup\n'));
    const r = spawnSync('systemd-analyze', ['verify', service, timer], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
  });
});

/**
 * The completions of completions/, each run by its real shell's completion machinery, without a
 * terminal of ours: bash calls the function as readline would (COMP_WORDS, COMP_CWORD,
 * COMPREPLY); zsh gets the line typed into an interactive shell on a pseudo-terminal (zpty),
 * with compadd wrapped to print what is offered; fish answers `complete -C`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildProgram } from '../src/cli/main.js';
import { describeProgram, SUGGESTED_VALUES } from '../src/cli/reference/model.js';
import { cliEnv, scrate, SCRATE } from './helpers/cli.js';
import { scratch } from './helpers/repo.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const completions = path.join(root, 'completions');

type Shell = 'bash' | 'zsh' | 'fish';

function installed(shell: Shell): boolean {
  return spawnSync(shell, ['-c', 'exit 0']).status === 0;
}

/** Each shell's completion of a line ("scrate key a"), candidates only (fish's descriptions cut off). */
const COMPLETE: Record<Shell, (line: string, env: NodeJS.ProcessEnv, dir: string) => string[]> = {
  bash: (line, env) =>
    run('bash', ['--norc', '--noprofile', '-c', 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _scrate; printf "%s\\n" "${COMPREPLY[@]}"', 'bash', path.join(completions, 'scrate.bash'), ...line.split(' ')], env),
  zsh: (line, env, dir) =>
    run('zsh', ['-f', path.join(dir, 'drive.zsh'), path.join(dir, 'rc.zsh'), line], env)
      .filter((l) => l.startsWith('@@HIT '))
      .map((l) => l.slice('@@HIT '.length)),
  fish: (line, env) => run('fish', ['--no-config', '-c', 'source $argv[1]; complete -C $argv[2]', path.join(completions, 'scrate.fish'), line], env).map((l) => l.split('\t')[0]!),
};

function run(shell: string, args: string[], env: NodeJS.ProcessEnv): string[] {
  const r = spawnSync(shell, args, { env, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, `${shell} failed: ${r.error ?? r.stderr}`);
  assert.equal(r.stderr, '', `${shell} wrote to stderr`);
  return r.stdout.split('\n').filter((l) => l !== '');
}

/**
 * The zsh harness: an interactive `zsh -f` on a pty, compinit with a dump file in the scratch
 * directory (compinit scanning every completion function takes seconds; the dump, once), Tab
 * bound to complete-word, compadd printing each candidate it is given, and the shell exiting
 * once the completion is done.
 */
function writeZshHarness(dir: string): void {
  fs.writeFileSync(
    path.join(dir, 'rc.zsh'),
    `PS1='' RPROMPT=''
fpath=(${completions} $fpath)
autoload -Uz compinit && compinit -u -d ${path.join(dir, 'zcompdump')}
bindkey '^I' complete-word
compadd() {
  # Calls with -O, -A or -D only compute matches for their caller: not what is offered.
  if [[ \${@[1,(i)(-|--)]} == *-(O|A|D)\\ * ]]; then builtin compadd "$@"; return; fi
  local -a __hits
  builtin compadd -A __hits "$@"
  print -rl -- "" "\${__hits[@]/#/@@HIT }"
  builtin compadd "$@"
}
__harness_done() { print -r -- '' '@@END'; exit }
comppostfuncs=(__harness_done)
`,
  );
  fs.writeFileSync(
    path.join(dir, 'drive.zsh'),
    `zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "source \${(q)1}"
zpty -w -n z "$2"$'\\t'
local out chunk
while zpty -r z chunk; do out+=$chunk; [[ $out == *@@END* ]] && break; done
zpty -d z
print -r -- "\${out//$'\\r'/}"
`,
  );
}

const sorted = (list: string[]) => [...new Set(list)].sort();
/** Files as the shells offer them differ (bash and fish: the path typed, fish and zsh: a / after a directory, zsh: the last component). */
const names = (list: string[]) => sorted(list.map((f) => path.basename(f.replace(/\/$/, ''))));

const spec = describeProgram(buildProgram());
const command = (name: string) => spec.subcommands.find((c) => c.path.join(' ') === name)!;
const catTypes = command('cat').arguments[0]!.completion;
const forgetFlags = command('forget').options.flatMap((o) => [o.short, o.long].filter((f): f is string => !!f));

for (const shell of ['bash', 'zsh', 'fish'] as const) {
  // Skipped only where the shell isn't installed; CI installs the three (.ci/run), so there a
  // missing shell fails the test instead.
  const skip = !installed(shell) && !process.env['CI'] ? `${shell} is not installed` : false;

  describe(`${shell} completion`, { skip }, () => {
    const tmp = scratch(`complete-${shell}`);
    const repo = path.join(tmp.dir, 'repo');
    const bin = path.join(tmp.dir, 'bin');
    // A home of its own: fish and zsh write their state there, scrate its cache.
    const env = (extra: Record<string, string | undefined> = {}) =>
      cliEnv(repo, { PATH: `${bin}:${process.env['PATH']}`, HOME: tmp.dir, XDG_CONFIG_HOME: path.join(tmp.dir, 'config'), XDG_DATA_HOME: path.join(tmp.dir, 'data'), XDG_CACHE_HOME: path.join(tmp.dir, 'cache'), ...extra });
    const complete = (line: string, extra?: Record<string, string | undefined>) => COMPLETE[shell](line, env(extra), tmp.dir);
    let ids: string[] = [];

    before(() => {
      fs.mkdirSync(bin);
      // The completions run `scrate` as the user's shell finds it.
      fs.symlinkSync(SCRATE, path.join(bin, 'scrate'));
      fs.mkdirSync(path.join(tmp.dir, 'tree'));
      fs.writeFileSync(path.join(tmp.dir, 'tree', 'file'), 'x');
      fs.writeFileSync(path.join(tmp.dir, 'password.txt'), 'cli test password\n');
      writeZshHarness(tmp.dir);
      for (const args of [['init'], ['backup', path.join(tmp.dir, 'tree')], ['backup', path.join(tmp.dir, 'tree'), '--tag', 'second']]) {
        const r = scrate(args, env());
        assert.equal(r.code, 0, r.stderr);
      }
      const list = JSON.parse(scrate(['snapshots', '--json'], env()).stdout) as { id: string }[];
      ids = list.map((s) => s.id.slice(0, 8));
      assert.equal(ids.length, 2);
    });
    after(() => tmp.cleanup());

    test('commands and nested subcommands', () => {
      assert.deepEqual(sorted(complete('scrate ')), sorted(spec.subcommands.map((c) => c.path[0]!)));
      assert.deepEqual(complete('scrate key a'), ['add']);
      assert.deepEqual(sorted(complete('scrate repair ')), ['index', 'packs', 'snapshots']);
      assert.deepEqual(sorted(complete('scrate -r /srv/repo -o s3.region=x re')), ['repair', 'restore']);
      assert.deepEqual(sorted(complete('scrate completion ')), ['bash', 'fish', 'zsh']);
    });

    test("options: a command's own and the global ones, after the command too", () => {
      assert.deepEqual(complete('scrate -r /srv/repo backup --ch'), ['--chunker']);
      assert.deepEqual(sorted(complete('scrate forget --keep-w')), sorted(forgetFlags.filter((f) => f.startsWith('--keep-w'))));
      const keyAdd = complete('scrate key add --');
      for (const flag of ['--write-only', '--new-password-file', '--host', '--repo', '--password-file', '--json']) assert.ok(keyAdd.includes(flag), `${flag} in ${keyAdd.join(' ')}`);
      assert.ok(!keyAdd.includes('--chunker'), "another command's option");
    });

    test('option values: fixed choices, suggested combinations, files, and nothing where nothing fits', () => {
      assert.deepEqual(sorted(complete('scrate backup --chunker ')), ['cdc', 'fixed']);
      assert.deepEqual(sorted(complete('scrate forget --group-by ')), sorted([...SUGGESTED_VALUES['forget --group-by']!]));
      assert.deepEqual(sorted(complete('scrate forget -g host,')), sorted(SUGGESTED_VALUES['forget --group-by']!.filter((v) => v.startsWith('host,'))));
      assert.deepEqual(names(complete(`scrate -p ${tmp.dir}/pass`)), ['password.txt']);
      assert.deepEqual(names(complete(`scrate restore latest --target ${tmp.dir}/tr`)), ['tree']);
      assert.deepEqual(complete(`scrate backup --host ${tmp.dir}/`), []);
    });

    test('arguments: object types, files, snapshot IDs; a value is not taken for an argument', () => {
      assert.equal(catTypes.kind, 'words');
      assert.deepEqual(sorted(complete('scrate cat ')), sorted([...(catTypes as { words: readonly string[] }).words]));
      assert.deepEqual(names(complete(`scrate backup --tag x ${tmp.dir}/tr`)), ['tree']);
      assert.deepEqual(sorted(complete('scrate restore ')), sorted(['latest', ...ids]));
      // ls -l is a flag, forget -l takes a value: each walker knows which.
      assert.deepEqual(sorted(complete('scrate ls -l ')), sorted(['latest', ...ids]));
      assert.deepEqual(sorted(complete('scrate forget -l 3 ')), sorted(['latest', ...ids]));
      assert.deepEqual(complete(`scrate dump latest ${tmp.dir}/`), [], 'a path inside a snapshot is not a local file');
    });

    test('snapshot IDs fail silently and quickly: no repository, a wrong password, no password', () => {
      const started = Date.now();
      assert.deepEqual(complete('scrate restore ', { SCRATE_REPOSITORY: undefined }), ['latest']);
      assert.deepEqual(complete('scrate restore ', { SCRATE_PASSWORD: 'not it' }), ['latest']);
      assert.deepEqual(complete('scrate restore ', { SCRATE_PASSWORD: undefined }), ['latest']);
      assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms`);
    });
  });
}

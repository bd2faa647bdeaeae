import { Argument, Command } from 'commander';
import { bashCompletion } from '../reference/bash.js';
import { fishCompletion } from '../reference/fish.js';
import { describeProgram } from '../reference/model.js';
import { zshCompletion } from '../reference/zsh.js';

const SCRIPTS = { bash: bashCompletion, zsh: zshCompletion, fish: fishCompletion } as const;

/** As restic's `generate --bash-completion`: the script of completions/, for the scrate that runs. */
export function completionCommand(): Command {
  return new Command('completion')
    .description('print the completion script of a shell (the man page\'s FILES says where to put it)')
    .addArgument(new Argument('<shell>', Object.keys(SCRIPTS).join(', ')).choices(Object.keys(SCRIPTS)))
    .action((shell: keyof typeof SCRIPTS, _: unknown, cmd: Command) => {
      process.stdout.write(SCRIPTS[shell](describeProgram(cmd.parent!)));
    });
}

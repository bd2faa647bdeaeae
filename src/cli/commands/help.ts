import { Command } from 'commander';
import { ExitCode, ScrateError } from '../../errors.js';

/**
 * `scrate help key add`: commander's own help command reads only one name, so it showed the help
 * of `key`. This one follows every name given down the command tree.
 */
export function helpCommand(): Command {
  return new Command('help')
    .description('show the help of a command, e.g. `scrate help key add`')
    .argument('[command...]', 'the command and its subcommands')
    .action((names: string[], _: unknown, cmd: Command) => {
      let target = cmd.parent!;
      const walked = ['scrate'];
      for (const name of names) {
        const next = target.commands.find((c) => c.name() === name);
        if (!next) throw new ScrateError(`unknown command: ${[...walked, name].join(' ')}`, ExitCode.fatal, `\`${[walked[0], 'help', ...walked.slice(1)].join(' ')}\` lists the commands`);
        walked.push(name);
        target = next;
      }
      target.help();
    });
}

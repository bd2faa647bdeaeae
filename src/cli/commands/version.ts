import { Command } from 'commander';
import { VERSION } from '../../archiver/archiver.js';
import type { Context } from '../context.js';

/** As restic's `version`, with Node.js where restic names its Go; --json is restic's message with node_version, os and arch. */
export function versionCommand(context: (cmd: Command) => Context): Command {
  return new Command('version').description('print the version of scrate and of the Node.js it runs on').action((_: unknown, cmd: Command) => {
    const ctx = context(cmd);
    if (ctx.out.json) {
      process.stdout.write(`${JSON.stringify({ message_type: 'version', version: VERSION, node_version: process.versions.node, os: process.platform, arch: process.arch })}\n`);
    } else {
      process.stdout.write(`scrate ${VERSION} running on Node.js ${process.versions.node} on ${process.platform}/${process.arch}\n`);
    }
  });
}

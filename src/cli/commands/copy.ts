import { Command } from 'commander';
import { ExitCode, ScrateError } from '../../errors.js';
import { shortId } from '../../repository/ids.js';
import { copySnapshots, type CopyStats } from '../../replicate/copy.js';
import { copyMode } from '../../replicate/mode.js';
import { copyable } from '../../replicate/select.js';
import { listSnapshots, type SnapshotEntry } from '../../snapshot/snapshot.js';
import { selectSnapshots } from '../../snapshot/select.js';
import { displayName } from '../../tree/node.js';
import { withRepository, type Context } from '../context.js';
import { addFromRepoOptions, withFromRepository, type FromRepoOptions } from '../from-repo.js';
import { humanTime } from '../local-time.js';
import { formatBytes, type Output } from '../output.js';
import { snapshotFilter, snapshotFilterOptions, type SnapshotFilterFlags } from '../snapshot-filter.js';

type CopyFlags = FromRepoOptions & SnapshotFilterFlags;

export function copyCommand(context: (cmd: Command) => Context): Command {
  const cmd = snapshotFilterOptions(new Command('copy').description('copy snapshots from --from-repo into this repository (re-chunked unless it was made with init --from-repo --copy-chunker-params)'), 'only snapshots')
    .argument('[snapshot...]', 'copy these snapshots (IDs, prefixes or latest) instead of all that match the filters');
  return addFromRepoOptions(cmd, 'copy snapshots from').action(async (ids: string[], opts: CopyFlags, cmd: Command) => {
    const ctx = context(cmd);
    if (!opts.fromRepo) throw new ScrateError('copy needs the repository to copy from', ExitCode.fatal, 'use --from-repo or set SCRATE_FROM_REPOSITORY');
    const stats = await withFromRepository(ctx, opts, (src, srcSignal) =>
      withRepository(
        ctx,
        'shared',
        async (dst, session) => {
          const selected = await selectSnapshots(src, ids, snapshotFilter(opts), (id, err) => ctx.out.warn(`snapshot ${shortId(id)} skipped: ${err.message}`));
          const { sources, left } = copyable(src, dst, selected, ids.length > 0);
          const whose = copyMode(src, dst) === 'identity' ? " made with the source's full key" : '';
          if (left) ctx.out.info(`${left} snapshot(s) left out: this write-only key copies only host ${displayName(dst.keys.hostname!)}'s snapshots${whose}`);
          const signal = AbortSignal.any([srcSignal, session.signal]);
          return copySnapshots(src, dst, sources, await listSnapshots(dst), events(ctx.out), signal);
        },
        { reads: false, index: false },
      ),
      { index: false },
    );
    report(ctx.out, stats);
    if (stats.failed) process.exitCode = ExitCode.partial;
  });
}

/** restic's lines. */
function events(out: Output) {
  return {
    onSnapshot(s: SnapshotEntry, copiedTo?: string) {
      const sn = s.snapshot;
      out.info('');
      out.info(`snapshot ${shortId(s.id)} of [${sn.paths.join(' ')}] at ${humanTime(Date.parse(sn.time))} by ${sn.username}@${sn.hostname}`);
      if (copiedTo) out.info(`skipping snapshot ${shortId(s.id)}, was already copied to snapshot ${shortId(copiedTo)}`);
    },
    onStarted() {
      out.info('  copy started, this may take a while...');
    },
    onSaved(_s: SnapshotEntry, id: string) {
      out.info(`snapshot ${shortId(id)} saved`);
    },
    onError(s: SnapshotEntry, message: string) {
      out.warn(`snapshot ${shortId(s.id)}: ${message}`);
    },
    onNote(message: string) {
      out.info(message);
    },
    onWarning(message: string) {
      out.warn(message);
    },
  };
}

function report(out: Output, s: CopyStats): void {
  if (out.json) {
    out.jsonLine({ message_type: 'summary', mode: s.mode, snapshots_copied: s.copied, snapshots_skipped: s.skipped, snapshots_failed: s.failed, blobs_copied: s.blobs, bytes_read: s.bytesRead, bytes_stored: s.bytesStored });
    return;
  }
  out.info('');
  out.info(`copied ${s.copied} snapshots, skipped ${s.skipped}${s.failed ? `, ${s.failed} failed` : ''}: ${s.blobs} blobs, ${formatBytes(s.bytesRead)} read, ${formatBytes(s.bytesStored)} stored`);
}

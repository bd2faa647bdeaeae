/**
 * Which chunking suits block devices: content-defined (FastCDC, the repository's parameters)
 * or fixed-size, block-aligned chunks. A 1 GiB ext4 image holding a real tree (/usr/include and
 * /usr/lib/python3.11) is backed up, about 20 MB of its files are rewritten, and it is backed
 * up again; the table shows what the second backup added and how long each took. Needs root.
 *
 *   npm run bench:device
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { backup } from '../src/archiver/archiver.js';
import type { ChunkerKind } from '../src/chunker/chunker.js';
import { LocalBackend } from '../src/backend/local.js';
import { Repository } from '../src/repository/repository.js';
import { attachLoop, changeFiles, detachLoop, loopDevicesUnavailable, makeExt4Image, mount, umount } from '../test/helpers/disk.js';

const MiB = 1024 * 1024;
const why = loopDevicesUnavailable();
if (why) {
  console.error(`bench:device: ${why}`);
  process.exit(1);
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scrate-bench-dev-'));
const image = path.join(dir, 'fs.img');
const mnt = path.join(dir, 'mnt');
const trees = ['/usr/include', '/usr/lib/python3.11'].filter((t) => fs.existsSync(t));

async function run(chunker: ChunkerKind, dev: string, tag: string): Promise<{ added: number; seconds: number }> {
  const repo = await Repository.open(new LocalBackend(path.join(dir, `repo-${chunker}`)), 'bench');
  await repo.loadIndex();
  const t0 = performance.now();
  const { snapshot } = await backup(repo, { paths: [dev], chunker, tags: [tag] });
  return { added: snapshot.summary!.dataStored, seconds: (performance.now() - t0) / 1000 };
}

try {
  makeExt4Image(image, 1024, trees, mnt);
  const kinds: ChunkerKind[] = ['fixed', 'cdc'];
  for (const k of kinds) await Repository.init(new LocalBackend(path.join(dir, `repo-${k}`)), 'bench', { kdfMs: 10 });
  let dev = attachLoop(image);
  const first = new Map<ChunkerKind, { added: number; seconds: number }>();
  for (const k of kinds) first.set(k, await run(k, dev, 'first'));
  mount(dev, mnt);
  const changed = changeFiles(mnt, 20 * 1000 * 1000);
  umount(mnt);
  detachLoop(dev);
  dev = attachLoop(image);
  const second = new Map<ChunkerKind, { added: number; seconds: number }>();
  for (const k of kinds) second.set(k, await run(k, dev, 'second'));
  detachLoop(dev);

  console.log(`1 GiB ext4 image of ${trees.join(', ')}; ${(changed / MiB).toFixed(1)} MiB of files rewritten between the backups`);
  console.log('| chunker | first backup: stored | time | second backup: added | added / changed | time |');
  console.log('|---|---|---|---|---|---|');
  for (const k of kinds) {
    const a = first.get(k)!;
    const b = second.get(k)!;
    console.log(`| ${k === 'fixed' ? 'fixed 1 MiB, aligned' : 'FastCDC 512K/1M/8M'} | ${(a.added / MiB).toFixed(1)} MiB | ${a.seconds.toFixed(1)} s | ${(b.added / MiB).toFixed(1)} MiB | ${(b.added / changed).toFixed(2)} | ${b.seconds.toFixed(1)} s |`);
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}

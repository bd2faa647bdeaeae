/**
 * Cost of encoding and decoding tree blobs, per node, on the directories of a real source tree
 * (default: the kernel tree of bench/run.ts). Nodes carry the entries' real lstat metadata and
 * random blob IDs, as a backup would produce. Usage: node dist/bench/trees.js [dir]
 */
import { randomBytes } from 'node:crypto';
import { readlinkSync } from 'node:fs';

import { ownerDb } from '../src/platform/owners.js';
import { listDirectory } from '../src/archiver/dir-listing.js';
import { nodeFromStats, nodeType } from '../src/archiver/metadata.js';
import { decodeTree, encodeTree, type Node } from '../src/tree/node.js';
import { unchangedTree } from '../src/tree/unchanged.js';

const ROOT = process.argv[2] ?? '/var/tmp/scrate-bench/pristine';
const RUNS = 9;

/** Every directory under root as the nodes of its entries, the way the archiver fills them. */
function collect(root: Buffer): Node[][] {
  const owners = ownerDb();
  const dirs: Node[][] = [];
  const visit = (dir: Buffer) => {
    const nodes: Node[] = [];
    for (const { name, stat: st } of listDirectory(dir)) {
      if (!st) continue;
      const full = Buffer.concat([dir, Buffer.from('/'), name]);
      const type = nodeType(st);
      if (!type) continue;
      const node = nodeFromStats(name, st, type, owners);
      if (type === 'file') node.content = Array.from({ length: 1 + (node.size % 3) }, () => randomBytes(32));
      else if (type === 'dir') {
        node.subtree = randomBytes(32);
        visit(full);
      } else if (type === 'symlink') node.linkTarget = readlinkSync(full, { encoding: 'buffer' });
      else node.rdev = st.rdev;
      nodes.push(node);
    }
    dirs.push(nodes);
  };
  visit(root);
  return dirs;
}

/**
 * Median and best of RUNS runs of fn over all directories, in µs of CPU per node: CPU time, not
 * wall time, so that other processes on a shared machine disturb the figures less.
 */
function time(nodeCount: number, fn: () => void): { median: number; best: number } {
  const perNode: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const start = process.cpuUsage();
    fn();
    const used = process.cpuUsage(start);
    perNode.push((used.user + used.system) / nodeCount);
  }
  perNode.sort((a, b) => a - b);
  return { median: perNode[RUNS >> 1]!, best: perNode[0]! };
}

const dirs = collect(Buffer.from(ROOT));
const nodeCount = dirs.reduce((n, d) => n + d.length, 0);
const blobs = dirs.map(encodeTree);
const bytes = blobs.reduce((n, b) => n + b.length, 0);
console.log(`${ROOT}: ${dirs.length} directories, ${nodeCount} nodes, ${(bytes / nodeCount).toFixed(0)} bytes per node encoded`);

let sink = 0;
const encode = time(nodeCount, () => {
  for (const d of dirs) sink += encodeTree(d).length;
});
const decode = time(nodeCount, () => {
  for (const b of blobs) sink += decodeTree(b).length;
});
// What an unchanged directory costs instead of encoding: the fresh nodes are new objects, and
// their content lists distinct from the stored ones (the archiver shares them: cheaper still).
const fresh = blobs.map(decodeTree);
const stored = blobs.map(decodeTree);
const compare = time(nodeCount, () => {
  for (let i = 0; i < fresh.length; i++) sink += unchangedTree(fresh[i]!, stored[i]!) ? 1 : 0;
});
const f = (t: { median: number; best: number }) => `${t.median.toFixed(2)} µs/node (best ${t.best.toFixed(2)})`;
console.log(`encodeTree: ${f(encode)}`);
console.log(`decodeTree: ${f(decode)}`);
console.log(`unchangedTree: ${f(compare)}`);
if (sink === 0) console.log('nothing measured');

import { randomInt } from 'node:crypto';

/**
 * Which packs `check --read-data-subset` reads, as restic 0.14 chooses them: `n/t`, the packs
 * whose ID's first byte is n − 1 modulo t (so t runs, n = 1…t, read every pack once); a share,
 * that many percent of the packs (rounded down, at least one), chosen at random; a size, the
 * share of the repository's bytes it is, as a share of the packs.
 */
export type ReadSubset = { part: number; of: number } | { percent: number } | { bytes: number };

/** The most groups `n/t` may have: groups are told apart by one byte of the ID. */
export const MAX_GROUPS = 256;

export function selectPacks(packs: ReadonlyMap<string, number>, subset: ReadSubset): Set<string> {
  if ('part' in subset) return new Set([...packs.keys()].filter((id) => parseInt(id.slice(0, 2), 16) % subset.of === subset.part - 1));
  if ('percent' in subset) return randomShare(packs, subset.percent);
  const total = [...packs.values()].reduce((a, b) => a + b, 0);
  return total === 0 ? new Set() : randomShare(packs, (Math.min(subset.bytes, total) / total) * 100);
}

function randomShare(packs: ReadonlyMap<string, number>, percent: number): Set<string> {
  const ids = [...packs.keys()];
  const count = ids.length === 0 ? 0 : Math.max(1, Math.floor((ids.length * percent) / 100));
  // The first `count` of a Fisher-Yates shuffle.
  for (let i = 0; i < count; i++) {
    const j = i + randomInt(ids.length - i);
    [ids[i], ids[j]] = [ids[j]!, ids[i]!];
  }
  return new Set(ids.slice(0, count));
}

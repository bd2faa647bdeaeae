import { displayName } from '../tree/node.js';

/** What a policy is applied to separately, as restic's `--group-by` divides snapshots. */
export interface GroupBy {
  host: boolean;
  paths: boolean;
  tags: boolean;
}

/** restic's `--group-by`: host, paths and tags (or their other spellings), comma-separated; empty for one group. */
export function parseGroupBy(text: string): GroupBy {
  const by: GroupBy = { host: false, paths: false, tags: false };
  for (const option of text.split(',')) {
    if (option === 'host' || option === 'hosts') by.host = true;
    else if (option === 'path' || option === 'paths') by.paths = true;
    else if (option === 'tag' || option === 'tags') by.tags = true;
    else if (option !== '') throw new Error(`unknown grouping option: '${option}'`);
  }
  return by;
}

/** A group's key as restic's JSON has it: what the group is not divided by is null (tags also when there are none) or "". */
export interface GroupKey {
  tags: string[] | null;
  host: string;
  paths: string[] | null;
}

export interface Groupable {
  hostname: string;
  paths: readonly string[];
  tags: readonly string[];
}

/** The groups, in the order of their keys (restic's come in Go's map order, which is random), each in the order given. */
export function groupSnapshots<T extends Groupable>(list: readonly T[], by: GroupBy): { key: GroupKey; snapshots: T[] }[] {
  const groups = new Map<string, { key: GroupKey; snapshots: T[] }>();
  for (const sn of list) {
    const key: GroupKey = {
      tags: by.tags && sn.tags.length ? [...sn.tags].sort() : null,
      host: by.host ? sn.hostname : '',
      paths: by.paths ? [...sn.paths].sort() : null,
    };
    const name = JSON.stringify([key.host, key.paths, key.tags]);
    let group = groups.get(name);
    if (!group) groups.set(name, (group = { key, snapshots: [] }));
    group.snapshots.push(sn);
  }
  return [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, g]) => g);
}

/** restic's header ("snapshots for (host [h], paths [/a, /b]):"); none when nothing divides the snapshots. */
export function groupHeader(key: GroupKey): string | undefined {
  const names = (list: string[]) => list.map(displayName).join(', ');
  const parts = [key.host !== '' ? `host [${displayName(key.host)}]` : '', key.tags ? `tags [${names(key.tags)}]` : '', key.paths ? `paths [${names(key.paths)}]` : ''].filter(Boolean);
  return parts.length ? `snapshots for (${parts.join(', ')}):` : undefined;
}

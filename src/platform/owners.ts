import { readFileSync } from 'node:fs';

/** Name ↔ id maps from /etc/passwd and /etc/group (Node has no getpwuid). Loaded once. */
export interface OwnerDb {
  userName(uid: number): string | undefined;
  groupName(gid: number): string | undefined;
  uidOf(name: string): number | undefined;
  gidOf(name: string): number | undefined;
}

function parse(file: string): Map<number, string> {
  const byId = new Map<number, string>();
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return byId;
  }
  for (const line of text.split('\n')) {
    const [name, , id] = line.split(':');
    const n = Number(id);
    if (name && Number.isInteger(n) && !byId.has(n)) byId.set(n, name);
  }
  return byId;
}

let cached: OwnerDb | undefined;

export function ownerDb(): OwnerDb {
  if (cached) return cached;
  const users = parse('/etc/passwd');
  const groups = parse('/etc/group');
  const uids = new Map([...users].map(([id, name]) => [name, id]));
  const gids = new Map([...groups].map(([id, name]) => [name, id]));
  cached = {
    userName: (uid) => users.get(uid),
    groupName: (gid) => groups.get(gid),
    uidOf: (name) => uids.get(name),
    gidOf: (name) => gids.get(name),
  };
  return cached;
}

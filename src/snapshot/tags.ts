/** restic's tag lists: `--tag a,b` is one list of two tags (spaces around each trimmed). */
export function parseTagList(text: string): string[] {
  return text.split(',').map((t) => t.trim());
}

/**
 * As restic's Snapshot.HasTags: all of the list's tags; an empty tag in it matches a snapshot
 * without tags (`--tag ''`, `--keep-tag ''`).
 */
export function hasTags(tags: readonly string[], list: readonly string[]): boolean {
  for (const tag of list) {
    if (tag === '' && tags.length === 0) return true;
    if (!tags.includes(tag)) return false;
  }
  return true;
}

/** As restic's HasTagList: any of the lists (no lists: any snapshot). */
export function hasAnyTagList(tags: readonly string[], lists: readonly (readonly string[])[]): boolean {
  return lists.length === 0 || lists.some((list) => hasTags(tags, list));
}

/** The tags a backup stores from its --tag lists, as restic's Flatten: in order, empty ones dropped. */
export function flattenTagLists(lists: readonly (readonly string[])[]): string[] {
  return lists.flat().filter((t) => t !== '');
}

import { formatDuration, isZero, type Duration } from './duration.js';
import { addDate, isoWeek, wallClock, type WallClock } from './local-time.js';
import { hasTags } from '../snapshot/tags.js';

/**
 * Which snapshots of a group to keep, as restic 0.14's ApplyPolicy decides
 * (internal/restic/snapshot_policy.go): the same buckets, keys, order and reasons, so that a
 * policy written for restic keeps the same snapshots. It knows nothing of repositories.
 */
export interface Policy {
  /** The newest n snapshots; then the newest snapshot of each of the newest n hours, days, ISO weeks, months, years that have one. */
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
  /** Every snapshot newer than this before the group's newest one. */
  within?: Duration;
  /** The newest snapshot of each hour (day, …) newer than this before the group's newest one. */
  withinHourly?: Duration;
  withinDaily?: Duration;
  withinWeekly?: Duration;
  withinMonthly?: Duration;
  withinYearly?: Duration;
  /** Every snapshot that has all the tags of one of these lists. */
  tags?: string[][];
}

export interface Candidate {
  id: string;
  /** Milliseconds since the epoch. */
  time: number;
  tags: readonly string[];
}

/** What is left of each count after a kept snapshot, the zero ones left out (restic's JSON omits them). */
export type Counters = Partial<Record<CountName, number>>;

export interface KeepReason<T> {
  snapshot: T;
  matches: string[];
  counters: Counters;
}

export interface Decision<T> {
  /** Newest first, as restic lists them; `reasons` in the same order. */
  keep: T[];
  remove: T[];
  reasons: KeepReason<T>[];
}

type CountName = 'last' | 'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly';

/** A bucket's key for a snapshot: the snapshot is kept where it differs from the last kept one's. */
type BucketKey = (w: WallClock, nr: number) => number;

const ymdh: BucketKey = (w) => w.year * 1_000_000 + w.month * 10_000 + w.day * 100 + w.hour;
const ymd: BucketKey = (w) => w.year * 10_000 + w.month * 100 + w.day;
const yw: BucketKey = (w) => {
  const { year, week } = isoWeek(w);
  return year * 100 + week;
};
const ym: BucketKey = (w) => w.year * 100 + w.month;
const y: BucketKey = (w) => w.year;

const COUNTED: { name: CountName; key: BucketKey; reason: string }[] = [
  { name: 'last', key: (_w, nr) => nr, reason: 'last snapshot' },
  { name: 'hourly', key: ymdh, reason: 'hourly snapshot' },
  { name: 'daily', key: ymd, reason: 'daily snapshot' },
  { name: 'weekly', key: yw, reason: 'weekly snapshot' },
  { name: 'monthly', key: ym, reason: 'monthly snapshot' },
  { name: 'yearly', key: y, reason: 'yearly snapshot' },
];

const WITHIN: { name: 'withinHourly' | 'withinDaily' | 'withinWeekly' | 'withinMonthly' | 'withinYearly'; key: BucketKey; reason: string }[] = [
  { name: 'withinHourly', key: ymdh, reason: 'hourly within' },
  { name: 'withinDaily', key: ymd, reason: 'daily within' },
  { name: 'withinWeekly', key: yw, reason: 'weekly within' },
  { name: 'withinMonthly', key: ym, reason: 'monthly within' },
  { name: 'withinYearly', key: y, reason: 'yearly within' },
];

/** No rule at all: restic then removes nothing (and `forget` refuses to run). */
export function isEmptyPolicy(p: Policy): boolean {
  const durations = [p.within, ...WITHIN.map((b) => p[b.name])];
  return !p.tags?.length && COUNTED.every((b) => !p[b.name]) && durations.every((d) => !d || isZero(d));
}

/**
 * Applies the policy to one group (an empty policy keeps everything). `list` in any order: it is ordered newest first, snapshots
 * of the same time staying in the order given. `now` bounds the newest snapshot that
 * `within` rules count from: one dated in the future is not it.
 */
export function applyPolicy<T extends Candidate>(list: readonly T[], policy: Policy, now: number): Decision<T> {
  const sorted = list.map((sn, i) => ({ sn, i })).sort((a, b) => b.sn.time - a.sn.time || a.i - b.i).map(({ sn }) => sn);
  if (isEmptyPolicy(policy)) return { keep: sorted, remove: [], reasons: sorted.map((sn) => ({ snapshot: sn, matches: ['policy is empty'], counters: {} })) };
  const keep: T[] = [];
  const remove: T[] = [];
  const reasons: KeepReason<T>[] = [];
  const newest = sorted.find((sn) => sn.time < now)?.time;
  // Newer than this is within the duration; with nothing before now restic counts from year 1, so everything is.
  const after = (d: Duration) => (newest === undefined ? -Infinity : addDate(newest, -d.years, -d.months, -d.days) - d.hours * 3600_000);
  const left = Object.fromEntries(COUNTED.map((b) => [b.name, policy[b.name] ?? 0])) as Record<CountName, number>;
  const lastKey = new Map<string, number>();
  sorted.forEach((sn, nr) => {
    const matches: string[] = [];
    for (const list of policy.tags ?? []) if (hasTags(sn.tags, list)) matches.push(`has tags [${list.join(', ')}]`);
    if (policy.within && !isZero(policy.within) && sn.time > after(policy.within)) matches.push(`within ${formatDuration(policy.within)}`);
    const wall = wallClock(sn.time);
    for (const b of COUNTED) {
      if (left[b.name] <= 0) continue;
      const key = b.key(wall, nr);
      if (key === lastKey.get(b.name)) continue;
      lastKey.set(b.name, key);
      left[b.name]--;
      matches.push(b.reason);
    }
    for (const b of WITHIN) {
      const within = policy[b.name];
      if (!within || isZero(within) || sn.time <= after(within)) continue;
      const key = b.key(wall, nr);
      if (key === lastKey.get(b.name)) continue;
      lastKey.set(b.name, key);
      matches.push(`${b.reason} ${formatDuration(within)}`);
    }
    if (matches.length === 0) {
      remove.push(sn);
      return;
    }
    keep.push(sn);
    reasons.push({ snapshot: sn, matches, counters: Object.fromEntries(COUNTED.filter((b) => left[b.name] !== 0).map((b) => [b.name, left[b.name]])) });
  });
  return { keep, remove, reasons };
}

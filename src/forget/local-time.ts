/**
 * The local calendar as restic sees it through Go's time package: the wall clock of this
 * process's time zone (TZ), and Go's answer for a local time that a DST change skipped or
 * repeated, which is not JavaScript's. restic's retention buckets, its `--keep-within` and its
 * `backup --time` all rest on it, and scrate must decide as restic does.
 */

export interface WallClock {
  year: number;
  /** 1 to 12 */
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  ms: number;
}

export function wallClock(ms: number): WallClock {
  const d = new Date(ms);
  return { year: d.getFullYear(), month: d.getMonth() + 1, day: d.getDate(), hour: d.getHours(), minute: d.getMinutes(), second: d.getSeconds(), ms: d.getMilliseconds() };
}

/**
 * The instant of a local wall-clock time, as Go's time.Date gives it: fields out of range roll
 * over (February 31 is March 3), and the offset is the one in force at the wall time read as
 * UTC, unless that instant lies beyond the offset's span: a skipped time moves forward (02:30
 * becomes 03:30 summer time) and a repeated one is, east of Greenwich, the later of the two
 * (JavaScript's Date takes the earlier).
 */
export function fromWallClock(w: WallClock): number {
  const d = new Date(0);
  // setUTCFullYear, not Date.UTC: that reads years 0 to 99 as 1900 to 1999.
  d.setUTCFullYear(w.year, w.month - 1, w.day);
  d.setUTCHours(w.hour, w.minute, w.second, w.ms);
  const asUtc = d.getTime();
  const guess = offsetAt(asUtc);
  const utc = asUtc - guess;
  return offsetAt(utc) === guess ? utc : asUtc - offsetAt(utc);
}

/** Milliseconds the local zone is ahead of UTC at an instant. */
function offsetAt(ms: number): number {
  return -new Date(ms).getTimezoneOffset() * 60_000;
}

/** Go's Time.AddDate in the local zone: the wall clock moved by calendar units, rolled over as Go does. */
export function addDate(ms: number, years: number, months: number, days: number): number {
  const w = wallClock(ms);
  return fromWallClock({ ...w, year: w.year + years, month: w.month + months, day: w.day + days });
}

/** The ISO 8601 week of a local date (weeks start on Monday; week 1 holds the year's first Thursday), as Go's ISOWeek. */
export function isoWeek(w: Pick<WallClock, 'year' | 'month' | 'day'>): { year: number; week: number } {
  const day = utcDate(w.year, w.month, w.day);
  const weekday = (new Date(day).getUTCDay() + 6) % 7; // Monday 0
  const thursday = new Date(day + (3 - weekday) * DAY_MS);
  const year = thursday.getUTCFullYear();
  return { year, week: Math.floor((thursday.getTime() - utcDate(year, 1, 1)) / (7 * DAY_MS)) + 1 };
}

const DAY_MS = 24 * 3600 * 1000;

function utcDate(year: number, month: number, day: number): number {
  return new Date(0).setUTCFullYear(year, month - 1, day);
}

/** restic's `backup --time` format, Go's layout "2006-01-02 15:04:05": the hour may have one digit, and a fraction of a second may follow. */
const RESTIC_TIME = /^(\d{4})-(\d{2})-(\d{2}) (\d{1,2}):(\d{2}):(\d{2})(?:[.,](\d+))?$/;

/** A local time as restic's `backup --time` takes it, or undefined where restic refuses it. */
export function parseLocalTime(text: string): number | undefined {
  const m = RESTIC_TIME.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const daysInMonth = new Date(utcDate(year, month + 1, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 59) return undefined;
  return fromWallClock({ year, month, day, hour, minute, second, ms: Number((m[7] ?? '').padEnd(3, '0').slice(0, 3)) });
}

/**
 * Times as restic shows them: in the local time zone, for people as "2006-01-02 15:04:05" and
 * in JSON as Go marshals a time (RFC 3339, nanoseconds without trailing zeros, "Z" for a zero
 * offset), so that scripts written for restic parse them alike.
 */

const NS_PER_MS = 1_000_000n;

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** The local calendar date and clock time of an instant, without a zone. */
function localClock(d: Date): string {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** For tables and messages: local time to the second, as restic prints it ("?" for no time). */
export function humanTime(ms: number): string {
  return Number.isFinite(ms) ? localClock(new Date(ms)) : '?';
}

/** For JSON: local time with its offset and the nanoseconds, from nanoseconds since the epoch. */
export function jsonTime(ns: bigint): string {
  const ms = Number(ns / NS_PER_MS - (ns % NS_PER_MS < 0n ? 1n : 0n));
  const d = new Date(ms);
  const subsecond = Number(((ns % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n);
  const fraction = subsecond ? `.${pad(subsecond, 9).replace(/0+$/, '')}` : '';
  // getTimezoneOffset() is minutes *behind* UTC: Berlin in winter is -60.
  const offset = -d.getTimezoneOffset();
  const zone = offset === 0 ? 'Z' : `${offset < 0 ? '-' : '+'}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`;
  return `${localClock(d).replace(' ', 'T')}${fraction}${zone}`;
}

/**
 * A stored time (toISOString's form, with up to nine fraction digits) for JSON; null for what
 * is not one (an old snapshot's summary may lack its times).
 */
export function jsonTimeOfIso(iso: string): string | null {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z$/.exec(iso);
  const seconds = m ? Date.parse(`${m[1]}Z`) : NaN;
  if (!Number.isFinite(seconds)) return null;
  return jsonTime(BigInt(seconds) * NS_PER_MS + BigInt((m![2] ?? '').padEnd(9, '0')));
}

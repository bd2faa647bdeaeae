/**
 * restic's durations for `--keep-within*`, such as `1y5m7d2h`: calendar units, counted back
 * from the newest snapshot on the local calendar (a month from March 31 is "February 31").
 */
export interface Duration {
  years: number;
  months: number;
  days: number;
  hours: number;
}

const UNITS = { y: 'years', m: 'months', d: 'days', h: 'hours' } as const;

/**
 * As restic's ParseDuration: numbers (a minus allowed) each followed by a unit; a unit given
 * twice counts its last number. Throws an Error saying what is wrong.
 */
export function parseDuration(text: string): Duration {
  const d: Duration = { years: 0, months: 0, days: 0, hours: 0 };
  let rest = text.trim();
  while (rest !== '') {
    const m = /^(-?)(\d*)(.?)/s.exec(rest)!;
    const [all, sign, digits, unit] = m as unknown as [string, string, string, string];
    if (digits === '') throw new Error('no number found');
    const n = Number(sign + digits);
    if (!Number.isSafeInteger(n)) throw new Error(`number ${digits} is too large`);
    if (unit === '') throw new Error(`no unit found after number ${n}`);
    if (!(unit in UNITS)) throw new Error(`invalid unit "${unit}" found after number ${n}`);
    d[UNITS[unit as keyof typeof UNITS]] = n;
    rest = rest.slice(all.length);
  }
  return d;
}

/** As restic writes it in reasons ("within 1y2d"): its non-zero units. */
export function formatDuration(d: Duration): string {
  return (Object.entries(UNITS) as [string, keyof Duration][]).map(([unit, field]) => (d[field] !== 0 ? `${d[field]}${unit}` : '')).join('');
}

export function isZero(d: Duration): boolean {
  return d.years === 0 && d.months === 0 && d.days === 0 && d.hours === 0;
}

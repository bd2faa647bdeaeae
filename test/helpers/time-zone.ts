/** Runs `fn` with the process in time zone `tz` (Node applies an assigned TZ at once). */
export function inZone<T>(tz: string, fn: () => T): T {
  const before = process.env['TZ'];
  process.env['TZ'] = tz;
  try {
    return fn();
  } finally {
    if (before === undefined) delete process.env['TZ'];
    else process.env['TZ'] = before;
  }
}

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { humanTime, jsonTime, jsonTimeOfIso } from '../src/cli/local-time.js';
import { inZone } from './helpers/time-zone.js';

const restic = JSON.parse(fs.readFileSync(fileURLToPath(new URL('../../test/fixtures/json/restic-0.14.json', import.meta.url)), 'utf8')) as Record<string, Record<string, unknown>[]>;

/** Nanoseconds since the epoch of an RFC 3339 time, read independently of the code under test. */
function nsOf(time: string): bigint {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(time);
  assert.ok(m, time);
  return BigInt(Date.parse(`${m[1]}${m[3]}`)) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
}

describe('times as restic (Go) writes them', () => {
  test('every time restic 0.14 printed in Berlin is written alike, to the nanosecond', () => {
    const times = [...restic['snapshots']!.map((s) => s['time']), ...restic['ls']!.flatMap((n) => [n['time'], n['mtime'], n['atime'], n['ctime']])].filter((t): t is string => typeof t === 'string');
    assert.ok(times.length > 20, `${times.length} times`);
    inZone('Europe/Berlin', () => {
      for (const t of times) assert.equal(jsonTime(nsOf(t)), t);
    });
  });

  test('the offset follows the zone and its DST; a zero offset is Z; before 1970 too', () => {
    const at = (iso: string) => BigInt(Date.parse(iso)) * 1_000_000n;
    inZone('Europe/Berlin', () => {
      assert.equal(jsonTime(at('2021-03-28T00:30:00Z')), '2021-03-28T01:30:00+01:00');
      assert.equal(jsonTime(at('2021-03-28T01:30:00Z')), '2021-03-28T03:30:00+02:00');
      assert.equal(humanTime(Date.parse('2021-03-28T01:30:00Z')), '2021-03-28 03:30:00');
      assert.equal(jsonTimeOfIso('2021-03-28T01:30:00.120Z'), '2021-03-28T03:30:00.12+02:00');
    });
    inZone('UTC', () => {
      assert.equal(jsonTime(0n), '1970-01-01T00:00:00Z');
      assert.equal(jsonTime(-1n), '1969-12-31T23:59:59.999999999Z');
    });
    inZone('Asia/Kolkata', () => assert.equal(jsonTime(-1n), '1970-01-01T05:29:59.999999999+05:30'));
    inZone('America/St_Johns', () => assert.equal(jsonTime(at('2026-01-01T12:00:00Z')), '2026-01-01T08:30:00-03:30'));
  });

  test('what is not a stored time is null in JSON and "?" for people', () => {
    for (const bad of ['', 'yesterday', '2021-13-01T00:00:00Z', '2021-03-28T01:30:00+02:00']) assert.equal(jsonTimeOfIso(bad), null, bad);
    assert.equal(humanTime(Number.NaN), '?');
  });
});

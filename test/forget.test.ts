import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { formatDuration, parseDuration } from '../src/forget/duration.js';
import { groupSnapshots, parseGroupBy } from '../src/forget/group.js';
import { isoWeek, parseLocalTime } from '../src/forget/local-time.js';
import { applyPolicy, type Policy } from '../src/forget/policy.js';
import { parseTagList } from '../src/snapshot/tags.js';
import { assertCleanError, cliEnv, jsonMessage, scrate } from './helpers/cli.js';
import { inZone } from './helpers/time-zone.js';
import { listObjects, scratch } from './helpers/repo.js';

/** What restic 0.14 decided, recorded by test/fixtures/forget/make-fixture.sh. */
interface Fixture {
  generated: string;
  zones: {
    tz: string;
    snapshots: { id: string; time: string; hostname: string; paths: string[]; tags: string[] }[];
    cases: { args: string[]; groups: ResticGroup[] }[];
  }[];
  times: { tz: string; input: string; time: string | null }[];
}

/** A group as `forget --json` prints it: the fixture keeps restic's snapshot IDs, the tests read scrate's snapshots whole. */
interface ForgetGroup<S, R> {
  tags: string[] | null;
  host: string;
  paths: string[] | null;
  keep: S[];
  remove: S[];
  reasons: R[];
}
type ResticGroup = ForgetGroup<string, { id: string; matches: string[]; counters: Record<string, number> }>;
type Shown = { id: string; time: string; writer: { access: string } };
type ScrateGroup = ForgetGroup<Shown, { snapshot: Shown; matches: string[]; counters: object }>;

const fixture = JSON.parse(fs.readFileSync(fileURLToPath(new URL('../../test/fixtures/forget/restic-cases.json', import.meta.url)), 'utf8')) as Fixture;


const COUNTS: Record<string, 'last' | 'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly'> = {
  '--keep-last': 'last',
  '--keep-hourly': 'hourly',
  '--keep-daily': 'daily',
  '--keep-weekly': 'weekly',
  '--keep-monthly': 'monthly',
  '--keep-yearly': 'yearly',
};
const DURATIONS: Record<string, 'within' | 'withinHourly' | 'withinDaily' | 'withinWeekly' | 'withinMonthly' | 'withinYearly'> = {
  '--keep-within': 'within',
  '--keep-within-hourly': 'withinHourly',
  '--keep-within-daily': 'withinDaily',
  '--keep-within-weekly': 'withinWeekly',
  '--keep-within-monthly': 'withinMonthly',
  '--keep-within-yearly': 'withinYearly',
};

/** restic's forget flags (each with a value) as a policy and a grouping. */
function parseArgs(args: string[]): { policy: Policy; groupBy: string } {
  const policy: Policy = { tags: [] };
  let groupBy = 'host,paths';
  for (let i = 0; i < args.length; i += 2) {
    const [flag, value] = [args[i]!, args[i + 1]!];
    if (flag in COUNTS) policy[COUNTS[flag]!] = Number(value);
    else if (flag in DURATIONS) policy[DURATIONS[flag]!] = parseDuration(value);
    else if (flag === '--keep-tag') policy.tags!.push(parseTagList(value));
    else if (flag === '--group-by') groupBy = value;
    else throw new Error(`fixture flag ${flag}`);
  }
  return { policy, groupBy };
}

const groupName = (g: { host: string; paths: string[] | null; tags: string[] | null }) => JSON.stringify([g.host, g.paths, g.tags]);

describe('forget policy: the decisions of restic 0.14', () => {
  for (const zone of fixture.zones) {
    const snapshots = zone.snapshots.map((s) => ({ ...s, time: Date.parse(s.time) }));
    for (const c of zone.cases) {
      test(`TZ=${zone.tz} ${c.args.map((a) => (a === '' ? "''" : a)).join(' ')}`, () => {
        const { policy, groupBy } = parseArgs(c.args);
        const ours = inZone(zone.tz, () =>
          groupSnapshots(snapshots, parseGroupBy(groupBy)).map(({ key, snapshots: list }) => {
            const d = applyPolicy(list, policy, Date.parse(fixture.generated));
            return { ...key, keep: d.keep.map((s) => s.id), remove: d.remove.map((s) => s.id), reasons: d.reasons.map((r) => ({ id: r.snapshot.id, matches: r.matches, counters: r.counters })) };
          }),
        );
        const restic = [...c.groups].sort((a, b) => (groupName(a) < groupName(b) ? -1 : 1));
        assert.deepEqual(ours.map(groupName), restic.map(groupName));
        ours.forEach((g, i) => assert.deepEqual(g, restic[i], `group ${groupName(g)}`));
      });
    }
  }

  test('the fixture covers what it claims: week 53, DST changes, a future snapshot, every grouping', () => {
    const berlin = fixture.zones.find((z) => z.tz === 'Europe/Berlin')!;
    const reasons = new Set(berlin.cases.flatMap((c) => c.groups.flatMap((g) => g.reasons.flatMap((r) => r.matches.map((m) => m.replace(/ [^ ]*$/, ''))))));
    for (const r of ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly', 'within', 'hourly within', 'daily within', 'weekly within', 'monthly within', 'yearly within', 'has tags']) {
      assert.ok(reasons.has(r) || reasons.has(`${r} snapshot`), r);
    }
    const groupings = new Set(berlin.cases.map((c) => (c.args.includes('--group-by') ? c.args[c.args.indexOf('--group-by') + 1] : 'host,paths')));
    assert.deepEqual([...groupings].sort(), ['', 'host', 'host,paths', 'host,paths,tags', 'paths', 'tags']);
    const times = berlin.snapshots.map((s) => s.time);
    for (const t of ['2021-01-01T', '2021-03-28T03:', '2021-10-31T02:40:00+02:00', '2021-10-31T02:20:00+01:00', '2099-', '2015-12-31T', '2026-01-01T']) {
      assert.ok(times.some((x) => x.startsWith(t)), t);
    }
    for (const zone of fixture.zones) assert.equal(new Set(zone.snapshots.map((s) => Date.parse(s.time))).size, zone.snapshots.length, 'no two snapshots at one time: restic orders those as it lists them');
  });
});

describe('forget policy: parts', () => {
  test('durations as restic parses and prints them', () => {
    assert.deepEqual(parseDuration('2y5m7d3h'), { years: 2, months: 5, days: 7, hours: 3 });
    assert.deepEqual(parseDuration(' 1d2d '), { years: 0, months: 0, days: 2, hours: 0 });
    assert.deepEqual(parseDuration('-3h'), { years: 0, months: 0, days: 0, hours: -3 });
    assert.equal(formatDuration(parseDuration('3h1y')), '1y3h');
    assert.throws(() => parseDuration('2x'), /invalid unit "x" found after number 2/);
    assert.throws(() => parseDuration('2'), /no unit found after number 2/);
    assert.throws(() => parseDuration('d'), /no number found/);
    assert.throws(() => parseDuration('1d 2h'), /no number found/);
  });

  test('ISO weeks at the turn of the year, as Go counts them', () => {
    const cases: [string, number, number][] = [
      ['2015-12-31', 2015, 53], ['2016-01-03', 2015, 53], ['2016-01-04', 2016, 1], ['2020-12-31', 2020, 53], ['2021-01-03', 2020, 53],
      ['2024-12-29', 2024, 52], ['2024-12-30', 2025, 1], ['2025-12-29', 2026, 1], ['2026-12-31', 2026, 53], ['2027-01-03', 2026, 53], ['2008-12-29', 2009, 1],
    ];
    for (const [date, year, week] of cases) {
      const [y, m, d] = date.split('-').map(Number) as [number, number, number];
      assert.deepEqual(isoWeek({ year: y, month: m, day: d }), { year, week }, date);
    }
  });

  test('--group-by as restic takes it', () => {
    assert.deepEqual(parseGroupBy('host,paths'), { host: true, paths: true, tags: false });
    assert.deepEqual(parseGroupBy('tag,hosts,path'), { host: true, paths: true, tags: true });
    assert.deepEqual(parseGroupBy(''), { host: false, paths: false, tags: false });
    assert.throws(() => parseGroupBy('host,bogus'), /unknown grouping option: 'bogus'/);
  });

  test('backup --time: local times as restic 0.14 took them, skipped and repeated DST hours included', () => {
    assert.ok(fixture.times.some((t) => t.time === null) && fixture.times.some((t) => t.input.includes(' 3:')));
    for (const t of fixture.times) {
      const ours = inZone(t.tz, () => parseLocalTime(t.input));
      assert.equal(ours === undefined ? null : new Date(ours).toISOString(), t.time === null ? null : new Date(Date.parse(t.time)).toISOString(), `TZ=${t.tz} ${JSON.stringify(t.input)}`);
    }
  });

  test('an empty policy keeps everything', () => {
    const d = applyPolicy([{ id: 'a', time: 1, tags: [] }], {}, Date.now());
    assert.deepEqual(d.remove, []);
    assert.deepEqual(d.reasons[0]!.matches, ['policy is empty']);
  });
});

describe('scrate forget and backup --time', () => {
  let tmp: ReturnType<typeof scratch>;
  let repo: string;
  let src: string;
  let env: NodeJS.ProcessEnv;
  let hostEnv: NodeJS.ProcessEnv;
  const ids = new Map<string, string>();
  const objects = (type: string) => listObjects(repo).filter((o) => o.startsWith(`${type}/`));
  const snapshotNames = () => objects('snapshots').map((o) => o.slice('snapshots/'.length)).sort();

  before(() => {
    tmp = scratch('forget');
    repo = path.join(tmp.dir, 'repo');
    src = path.join(tmp.dir, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'f'), 'forget me not\n');
    env = cliEnv(repo, { TZ: 'Europe/Berlin', XDG_CACHE_HOME: path.join(tmp.dir, 'cache-full') });
    hostEnv = cliEnv(repo, { TZ: 'Europe/Berlin', SCRATE_PASSWORD: 'host password', XDG_CACHE_HOME: path.join(tmp.dir, 'cache-host') });
  });
  after(() => tmp.cleanup());

  test('backup --time dates the snapshot as restic does; a malformed time is one line, exit 1', () => {
    assert.equal(scrate(['init'], env).code, 0);
    // 02:30 did not happen in Berlin that night: restic (Go) takes 03:30 summer time.
    for (const [name, time] of [['d1', '2021-03-27 10:00:00'], ['d2', '2021-03-28 02:30:00'], ['d3', '2021-03-28 09:00:00'], ['d4', '2021-03-29 10:00:00']]) {
      const r = scrate(['backup', '--time', time!, '--tag', name!, src, '--json'], env);
      assert.equal(r.code, 0, r.stderr);
      ids.set(name!, jsonMessage<{ full_snapshot_id: string }>(r.stdout, 'summary').full_snapshot_id);
    }
    const list = JSON.parse(scrate(['snapshots', '--json'], env).stdout) as { id: string; time: string }[];
    // Shown in local time with its offset, as restic shows them.
    assert.deepEqual(list.map((s) => s.time), ['2021-03-27T10:00:00+01:00', '2021-03-28T03:30:00+02:00', '2021-03-28T09:00:00+02:00', '2021-03-29T10:00:00+02:00']);
    assertCleanError(scrate(['backup', '--time', '2021-02-30 10:00:00', src], env), 1, /--time .*local time/);
    assertCleanError(scrate(['backup', '--time', '2021-01-02T03:04:05Z', src], env), 1, /--time/);
  });

  test('a write-only key dates its snapshots too, but not over a day ahead', () => {
    fs.writeFileSync(path.join(tmp.dir, 'wo.pass'), 'host password\n');
    assert.equal(scrate(['key', 'add', '--write-only', '--host', 'web1', '--new-password-file', path.join(tmp.dir, 'wo.pass')], env).code, 0);
    assertCleanError(scrate(['backup', '--time', '2099-01-01 00:00:00', src], hostEnv), 1, /write-only key cannot date a snapshot over a day ahead/);
    const r = scrate(['backup', '--time', '2021-03-29 11:00:00', src, '--json'], hostEnv);
    assert.equal(r.code, 0, r.stderr);
    ids.set('web1', jsonMessage<{ full_snapshot_id: string }>(r.stdout, 'summary').full_snapshot_id);
  });

  test('forget refuses a write-only key, and runs without a policy or IDs no more than restic 0.17 does', () => {
    assertCleanError(scrate(['forget', '--keep-last', '1'], hostEnv), 1, /write-only/);
    assertCleanError(scrate(['forget'], env), 1, /no policy was specified/);
    assertCleanError(scrate(['forget', '--keep-within', '2x'], env), 1, /invalid unit "x"/);
    assertCleanError(scrate(['forget', '--keep-last', '1', '--group-by', 'bogus'], env), 1, /unknown grouping option: 'bogus'/);
  });

  test('--dry-run decides and removes nothing', () => {
    const before = listObjects(repo);
    const r = scrate(['forget', '--keep-daily', '2', '--dry-run'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^snapshots for \(host \[.+\], paths \[.+\]\):$/m);
    assert.match(r.stdout, /^keep 2 snapshots:$/m);
    assert.match(r.stdout, /daily snapshot/);
    assert.match(r.stdout, /^remove 2 snapshots:$/m);
    assert.match(r.stdout, new RegExp(`^\\{${[ids.get('d1')!, ids.get('d2')!].map((i) => i.slice(0, 8)).sort().join(' ')}\\}$`, 'm'));
    assert.deepEqual(listObjects(repo).filter((o) => !o.startsWith('locks/')), before);
  });

  test('a policy removes exactly the snapshot objects restic would, of every writer, and nothing else', () => {
    const packs = objects('data');
    const index = objects('index');
    const r = scrate(['forget', '--keep-last', '1', '--keep-tag', 'd1', '--group-by', 'host', '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    const groups = JSON.parse(r.stdout) as ScrateGroup[];
    assert.deepEqual(groups.map((g) => Object.keys(g)), [0, 1].map(() => ['tags', 'host', 'paths', 'keep', 'remove', 'reasons']));
    const full = groups.find((g) => g.host !== 'web1')!;
    assert.deepEqual([full.tags, full.paths], [null, null]);
    assert.deepEqual(full.keep.map((s) => s.id), [ids.get('d4'), ids.get('d1')]);
    assert.deepEqual(full.remove.map((s) => s.id), [ids.get('d3'), ids.get('d2')]);
    assert.deepEqual(full.reasons.map((x) => [x.snapshot.id, x.matches, x.counters]), [[ids.get('d4'), ['last snapshot'], {}], [ids.get('d1'), ['has tags [d1]'], {}]]);
    assert.deepEqual([full.keep[0]!.time, full.keep[0]!.writer.access], ['2021-03-29T10:00:00+02:00', 'full']);
    const web1 = groups.find((g) => g.host === 'web1')!;
    assert.deepEqual([web1.keep.map((s) => s.writer.access), web1.remove], [['write-only'], []]);
    assert.deepEqual(snapshotNames(), [ids.get('d1')!, ids.get('d4')!, ids.get('web1')!].sort());
    assert.deepEqual(objects('data'), packs);
    assert.deepEqual(objects('index'), index);
    assert.equal(scrate(['check'], env).code, 0);
  });

  test('explicit IDs remove just those, of any writer; an unknown one is skipped with a warning', () => {
    const r = scrate(['forget', ids.get('web1')!.slice(0, 10), 'deadbeef'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^warning: ignoring deadbeef: no snapshot deadbeef$/m);
    assert.match(r.stdout, /^removed 1 snapshot$/m);
    assert.deepEqual(snapshotNames(), [ids.get('d1')!, ids.get('d4')!].sort());
  });
});

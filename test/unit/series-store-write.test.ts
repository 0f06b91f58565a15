// SeriesStore.write(): the exposition in slices, with a turn of the event loop between them, so a
// large /metrics never holds up the probes. The tests count the turns through the yieldTurn seam
// and time rendering with a fake clock (no sleeping), and change the store between slices the way
// a round's commit would.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { counter, gauge, histogram, SeriesStore } from '../../src/probing/series.ts';

const up = gauge('t_up', 'Up, with a model.', ['model']);
const success = gauge('t_success', 'Success per probe.', ['probe']);
const reason = gauge('t_reason', 'Help with a \\ backslash\nand a newline.', ['probe', 'reason']);
const runs = counter('t_runs_total', 'Runs.', ['probe']);
const dist = histogram('t_dist_seconds', 'A distribution.', ['probe'], [0.1, 1, 10]);
const targets = 2000;

/** 2,000 targets, five families: about 12,000 series and 36,000 lines. */
function filled(options = { targetLabel: true, cumulative: true }): SeriesStore {
  const s = new SeriesStore(new Registry(), { ...options, metrics: [up, success, reason, runs, dist] });
  for (let i = 0; i < targets; i++) {
    const t = `t${i}`;
    s.set(t, up, i % 7 === 0 ? 0 : 1, { model: i % 3 === 0 ? 'Qwen/"quoted"\\model' : 'Qwen/Qwen3-0.6B' });
    for (const probe of ['models', 'chat']) {
      s.set(t, success, i % 5 === 0 ? 0 : 1, { probe });
      s.inc(t, runs, { probe }, i);
      s.observe(t, dist, i / 100, { probe });
    }
    if (i % 5 === 0) s.set(t, reason, 1, { probe: 'chat', reason: 'timeout' });
  }
  return s;
}

/** write() with a counting yieldTurn (by default a turn after every slice): the chunks, and what happened in order. */
async function written(s: SeriesStore, sliceSeries?: number, between?: (turn: number, chunks: readonly string[]) => void, timing: { turnMs?: number; now?: () => number } = { turnMs: 0 }) {
  const chunks: string[] = [];
  const events: string[] = [];
  let turns = 0;
  await s.write(
    (chunk) => {
      chunks.push(chunk);
      events.push('chunk');
    },
    {
      sliceSeries,
      ...timing,
      yieldTurn: async () => {
        events.push('yield');
        turns += 1;
        between?.(turns, chunks);
      },
    },
  );
  return { chunks, events, turns };
}

const seriesCount = (text: string) => text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;

test('write() emits exactly the bytes text() does, whatever the slice size', async () => {
  for (const options of [{ targetLabel: true, cumulative: true }, { targetLabel: false, cumulative: false }]) {
    const s = filled(options);
    const text = s.text();
    assert.ok(text.length > 1_000_000 || !options.targetLabel, `a big exposition: ${text.length} B`);
    for (const slice of [1, 7, 1000, 5000, 1e9, undefined]) {
      const { chunks } = await written(s, slice);
      assert.equal(chunks.join(''), text, `targetLabel ${options.targetLabel}, slices of ${slice}`);
    }
  }
  // Nothing to write: no chunk, no yield.
  const empty = await written(new SeriesStore(new Registry(), { targetLabel: true, cumulative: true }));
  assert.deepEqual(empty, { chunks: [], events: [], turns: 0 });
});

test('one turn of the event loop between slices; a slice ends between targets, after a whole line', async () => {
  const s = filled();
  // 2,000 targets: up 1 + success 2 + reason 1 per fifth target + runs 2 + dist 2 series.
  const series = targets * 7 + targets / 5;
  for (const slice of [100, 1000]) {
    const { chunks, events, turns } = await written(s, slice);
    // Each family's last slice may be short, so a few more slices than series / slice.
    assert.ok(turns >= Math.floor(series / slice) - 1 && turns <= Math.ceil(series / slice) + 5, `${turns} turns for ${series} series in slices of ${slice}`);
    assert.equal(chunks.length, turns + 1);
    assert.deepEqual(events, chunks.flatMap((_, i) => (i === 0 ? ['chunk'] : ['yield', 'chunk'])), 'never two slices in one turn');
    for (const chunk of chunks) {
      assert.ok(chunk.endsWith('\n'), 'a slice ends after a whole line');
      // A slice holds about `slice` series: a target's whole group can overshoot by a few.
      assert.ok(seriesCount(chunk.replace(/^t_dist_seconds_(bucket|sum)\{.*\n/gm, '')) <= slice + 4, `at most a target's group past ${slice}`);
    }
  }
  // The default: a turn once rendering has held the loop 25 ms, so none for a small store.
  const small = new SeriesStore(new Registry(), { targetLabel: true, cumulative: true });
  small.set('a', up, 1, { model: 'm' });
  assert.equal((await written(small, undefined, undefined, {})).turns, 0);
});

test('a turn once rendering has held the event loop turnMs, timed by the clock it is given', async () => {
  const s = filled();
  // A clock that advances 1 ms each time it is read: write() reads it once per slice and once after a turn.
  let ms = 0;
  const now = () => (ms += 1);
  const { chunks, events, turns } = await written(s, 100, undefined, { turnMs: 5, now });
  const slices = chunks.length;
  assert.ok(slices > 100);
  // Turns after 5 ms: about one every 4 slices (each turn's own clock reading counts one).
  assert.ok(turns >= Math.floor(slices / 5) - 1 && turns <= Math.ceil(slices / 3), `${turns} turns for ${slices} slices`);
  let run = 0;
  let longest = 0;
  for (const e of events) (run = e === 'chunk' ? run + 1 : 0), (longest = Math.max(longest, run));
  assert.ok(longest <= 5, `at most 5 slices between turns, saw ${longest}`);
  // A clock that never moves: one block, no turn.
  assert.equal((await written(s, 100, undefined, { turnMs: 5, now: () => 0 })).turns, 0);
});

test('a change between slices shows up only in a later slice, each line whole; a target appears at most once per family', async () => {
  const s = filled();
  const before = s.text();
  let changedAt = -1;
  const { chunks } = await written(s, 500, (turn, sofar) => {
    // Once the success family is under way: t0 and t1 written, t1998 and t1999 not yet.
    if (changedAt !== -1 || !sofar.at(-1)!.includes('t_success{target="t1",probe="chat"}')) return;
    changedAt = turn;
    s.set('t0', success, 42, { probe: 'models' }); // already written: this scrape keeps 0
    s.set('t1999', success, 42, { probe: 'models' }); // not yet: this scrape sees 42
    // A target written already goes away and comes back (to the end of the family's map).
    s.remove('t1', success, { probe: 'models' });
    s.remove('t1', success, { probe: 'chat' });
    s.set('t1', success, 7, { probe: 'chat' });
    // One not written yet goes away for good.
    s.remove('t1998', success, { probe: 'models' });
    s.remove('t1998', success, { probe: 'chat' });
    // A new target, last in every family it is in.
    s.set('t-new', success, 5, { probe: 'models' });
  });
  assert.ok(changedAt > 0);
  const lines = chunks.join('').split('\n').slice(0, -1);
  const sample = /^(# (HELP|TYPE) .*|t_[a-z_]+(\{([a-z]+="([^"\\]|\\.)*",?)*\})? [-+0-9.e]+|t_[a-z_]+(\{.*\})? (NaN|[+-]Inf))$/;
  for (const line of lines) if (line !== '') assert.match(line, sample, 'no torn line');
  const count = (prefix: string) => lines.filter((l) => l.startsWith(prefix)).length;
  // Where the change fell: the slices before it hold the old values.
  const early = chunks.slice(0, changedAt).join('');
  assert.match(early, /^t_success\{target="t0",probe="models"\} 0$/m);
  assert.ok(lines.includes('t_success{target="t0",probe="models"} 0'), 'written before the change: the old value');
  assert.ok(lines.includes('t_success{target="t1999",probe="models"} 42'), 'written after the change: the new value');
  assert.equal(count('t_success{target="t1",'), 2, 't1 once: its two series as written before it went');
  assert.equal(count('t_success{target="t1998",'), 0, 'gone before its turn came');
  assert.equal(count('t_success{target="t-new",'), 0, 'came after its family was listed: the next scrape has it');
  // The families' order and their HELP/TYPE lines are as text() writes them.
  const heads = (text: string) => text.split('\n').filter((l) => l.startsWith('# '));
  assert.deepEqual(heads(chunks.join('')), heads(before));
  // The next scrape sees the store as it now is.
  assert.equal((await written(s, 500)).chunks.join(''), s.text());
  assert.match(s.text(), /^t_success\{target="t-new",probe="models"\} 5$/m);
});

test('a sink that returns a promise is waited for before the next slice', async () => {
  const s = filled();
  let pending = 0;
  let most = 0;
  await s.write(
    async () => {
      pending += 1;
      most = Math.max(most, pending);
      await new Promise((resolve) => setImmediate(resolve));
      pending -= 1;
    },
    { sliceSeries: 1000 },
  );
  assert.equal(most, 1);
});

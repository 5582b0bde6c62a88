import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Progress, estimateEtaMs, formatDuration, formatRate, type ProgressStream } from '../src/cli/progress.ts';

class FakeStream implements ProgressStream {
  chunks: string[] = [];
  constructor(public isTTY: boolean, public columns = 100) {}
  write(chunk: string): boolean {
    this.chunks.push(chunk);
    return true;
  }
  get text(): string {
    return this.chunks.join('');
  }
}

function clock(start = 1000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

test('ETA: remaining units at the observed rate, capped by a time limit', () => {
  assert.equal(estimateEtaMs(10, 50, 20_000), 80_000);
  assert.equal(estimateEtaMs(50, 50, 20_000), 0);
  assert.equal(estimateEtaMs(60, 50, 20_000), 0);
  assert.equal(estimateEtaMs(0, 50, 20_000), undefined, 'nothing done: no rate yet');
  assert.equal(estimateEtaMs(5, undefined, 20_000), undefined, 'no total, no limit');
  assert.equal(estimateEtaMs(5, undefined, 20_000, 60_000), 40_000, 'a time limit alone still bounds the wait');
  assert.equal(estimateEtaMs(10, 50, 20_000, 30_000), 10_000, 'the limit ends the work before the count does');
  assert.equal(estimateEtaMs(10, 50, 20_000, 600_000), 80_000);
  assert.equal(estimateEtaMs(10, 50, 90_000, 60_000), 0, 'past the limit');
});

test('durations and rates read like a clock and a speedometer', () => {
  assert.equal(formatDuration(7_000), '0:07');
  assert.equal(formatDuration(245_000), '4:05');
  assert.equal(formatDuration(3_723_000), '1:02:03');
  assert.equal(formatDuration(NaN), '?');
  assert.equal(formatRate(30, 10_000), '3.00 it/s');
  assert.equal(formatRate(5_000, 10_000, 'samples'), '500 samples/s');
  assert.equal(formatRate(3, 60_000), '3.00 it/min');
  assert.equal(formatRate(0, 1000), '-/s');
});

test('not a terminal: an occasional plain line, no control characters, and a final line', () => {
  const stream = new FakeStream(false);
  const c = clock();
  const p = new Progress({ label: 'search', total: 100, stream, now: c.now, logIntervalMs: 10_000 });
  for (let i = 0; i < 10; i++) {
    c.advance(500);
    p.tick(1, `best 0.9${i} @ 1.84 ms`);
  }
  assert.equal(stream.chunks.length, 0, 'quiet between intervals (5 s elapsed)');
  c.advance(5_000);
  p.tick();
  assert.equal(stream.chunks.length, 1);
  // 11 of 100 in 10 s: 89 left at 1.1/s.
  assert.equal(stream.chunks[0], 'search: 11/100 (11%) · 1.10 it/s · ETA 1:21 · best 0.99 @ 1.84 ms\n');
  c.advance(2_000);
  p.update(20, 'best 0.962 @ 1.84 ms');
  assert.equal(stream.chunks.length, 1, 'next line only after another interval');
  p.finish();
  assert.equal(stream.chunks.length, 2);
  assert.match(stream.chunks[1], /^search: 20\/100 \(20%\) · .* · took 0:12 · best 0\.962 @ 1\.84 ms\n$/);
  assert.doesNotMatch(stream.text, /[\r\x1b]/);
  p.tick();
  assert.equal(stream.chunks.length, 2, 'nothing after finish');
});

test('quiet writes nothing at all', () => {
  const stream = new FakeStream(true);
  const c = clock();
  const p = new Progress({ label: 'calibration', total: 3, stream, now: c.now, quiet: true, logIntervalMs: 1 });
  for (let i = 0; i < 3; i++) {
    c.advance(1000);
    p.tick();
  }
  p.log('hello');
  p.finish('done');
  assert.equal(stream.text, '');
});

test('terminal: a bar redrawn in place, throttled, fitted to the width; log lines do not break it', () => {
  const stream = new FakeStream(true, 60);
  const c = clock();
  const p = new Progress({ label: 'analysis', total: 4, stream, now: c.now, redrawMs: 100 });
  c.advance(1000);
  p.tick(1, 'layer p2o.Conv.0 with a very long status that cannot fit the terminal width');
  const first = stream.chunks.at(-1)!;
  assert.ok(first.startsWith('\r\x1b[K'), 'each redraw returns to column 0 and clears the line');
  assert.ok(!first.includes('\n'));
  assert.ok([...first.slice(4)].length < 60, 'never wraps');
  assert.match(first, /analysis █{6}░{18}/, '1/4 of a 24-cell bar');
  c.advance(10);
  p.tick();
  assert.equal(stream.chunks.length, 1, 'redraws are throttled');
  c.advance(200);
  p.tick();
  assert.match(stream.chunks.at(-1)!, /3\/4 \(75%\)/);
  p.log('calibrated 51 tensors');
  assert.ok(stream.chunks.includes('\r\x1b[Kcalibrated 51 tensors\n'));
  assert.match(stream.chunks.at(-1)!, /^\r\x1b\[Kanalysis █/, 'the bar comes back under the message');
  p.finish();
  // The final line stays in the scrollback, so it keeps the whole status (it may wrap).
  assert.match(stream.chunks.at(-1)!, /^\r\x1b\[Kanalysis: 3\/4 \(75%\) · .* · took 0:01 · layer p2o\.Conv\.0 .* width\n$/);
});

test('terminal without a total: a spinner with elapsed time', () => {
  const stream = new FakeStream(true);
  const c = clock();
  const p = new Progress({ label: 'search', stream, now: c.now, redrawMs: 0 });
  c.advance(3000);
  p.tick(1);
  c.advance(3000);
  p.tick(1);
  const [a, b] = stream.chunks;
  assert.notEqual(a.slice(4, 5), b.slice(4, 5), 'the spinner turns');
  assert.match(b, /search: |search 2 · /);
  assert.match(b, /elapsed 0:06/);
  p.setTotal(4);
  assert.match(stream.chunks.at(-1)!, /2\/4 \(50%\) .*ETA 0:06/);
});

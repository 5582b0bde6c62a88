import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runSearch } from '../src/search/run.ts';
import { observeProgress, searchProgress, type ProgressSnapshot } from '../src/cli/progress.ts';
import { tinyCnnFixture } from './fixtures/models.ts';

const fixture = () => tinyCnnFixture('trtmix-calib-', 'calib-search-data');

const quiet = { quiet: true, log: () => {} };
const base = { seed: 0, 'calib-samples': 16, 'eval-samples': 24, 'analysis-samples': 8, metric: 'cosine', target: 't4', 'time-limit': '10m', calibration: 'entropy' };
type Line = { key: string; confirmed: boolean; subsetScore: number | null };
const history = (out: string): Line[] => readFileSync(join(out, 'history.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));

/** The INT8 action a key's int8 layers share (`int8`, `int8@mse`, ...), or undefined when they differ or there are none. */
function uniformInt8(key: string): string | undefined {
  const decisions = key.split('|').map((d) => d.slice(d.lastIndexOf('=') + 1));
  const int8 = decisions.filter((d) => d.startsWith('int8'));
  if (int8.length === 0 || decisions.some((d) => d.startsWith('mixed'))) return undefined;
  return new Set(int8).size === 1 ? int8[0] : undefined;
}

test("the DQN's first evaluations are all-FP16 and all-INT8 under each calibration of the action set", async () => {
  const { dir, model, data } = fixture();
  const out = join(dir, 'dqn');
  await runSearch({ ...base, model, data, out, agent: 'dqn', episodes: 12, 'max-evaluations': 6, 'screen-samples': 0, 'layer-calibration': ['mse', 'max'], 'max-drop': 0.01 }, quiet);
  const lines = history(out);
  const first = lines.slice(0, 4).map((l) => l.key);
  assert.ok(first[0].split('|').every((d) => d.endsWith('=fp16') || d.endsWith('=fp32')), `first: all-FP16, got ${first[0]}`);
  assert.deepEqual(first.slice(1).map(uniformInt8), ['int8', 'int8@mse', 'int8@max'], first.join('\n'));
});

test('search progress counts screening runs, and greedy and knapsack spend their budget or say why they stopped', async () => {
  const { dir, model, data } = fixture();
  assert.deepEqual(searchProgress({ evaluations: 2, screeningRuns: 8, maxEvaluations: 10 }), { done: 10, total: 50 });
  assert.deepEqual(searchProgress({ evaluations: 0, screeningRuns: 0, maxEvaluations: 10 }), { done: 0, total: 10 });
  assert.deepEqual(searchProgress({ evaluations: 3, screeningRuns: 4 }), { done: 7 });
  for (const agent of ['greedy', 'knapsack']) {
    const snapshots: ProgressSnapshot[] = [];
    const stop = observeProgress((p) => { if (p.label === `search (${agent})`) snapshots.push(p); });
    const out = join(dir, agent);
    const notes: string[] = [];
    let outcome;
    try {
      outcome = await runSearch({ ...base, model, data, out, agent, 'max-evaluations': 10, 'screen-samples': 8, 'layer-calibration': ['mse', 'max'], 'max-drop': 0.002 }, { quiet: false, log: (m: string) => notes.push(m) });
    } finally {
      stop();
    }
    const result = outcome.result!;
    assert.ok(result.subsetEvaluations > 0, `${agent} screened some policies`);
    const last = snapshots.at(-1)!;
    // The agent's measurements, and at most one more: the ladder's safe end (all-FP16 confirmed) after it.
    const runs = result.evaluations + result.subsetEvaluations;
    assert.ok(last.done >= runs && last.done <= runs + 1, `${agent}: the bar counts full evaluations and screening runs: ${last.done} vs ${runs}`);
    assert.ok(last.total! >= last.done);
    const spent = result.evaluations >= 10;
    const said = result.notes.some((n) => /^stopped after \d+ of 10 evaluations: /.test(n));
    assert.ok(spent || said, `${agent}: ${result.evaluations} evaluations; notes ${result.notes.join('; ')}`);
    assert.ok(notes.some((m) => m.startsWith(`  ${agent}: `)), 'the notes are printed');
    // Calibration first: all-INT8 under each method is among what it measured.
    const measured = new Set(history(out).map((l) => uniformInt8(l.key)));
    for (const a of ['int8', 'int8@mse', 'int8@max']) assert.ok(measured.has(a), `${agent} measured all-${a}`);
  }
});

/**
 * `--proposals K` with `--jobs 1/2/4`: the workers (real worker threads, each with its own onnxruntime session) score
 * a round's policies at once, and the search ends with the same policy.json and history.jsonl (timing fields aside)
 * whatever their number. The progress line and report.html say how the evaluations ran.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FAST, trtmix, workspace, historyWithoutTiming, policyWithoutTiming } from './cli-helpers.ts';

const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8'));


test('the same seed and --proposals 4 give the same search on 1, 2 and 4 worker threads', async () => {
  const ws = workspace('search-jobs');
  // Screening on (8 of 16 samples), so rounds screen and confirm at once.
  const options = ['--model', ws.model, '--data', ws.data, ...FAST.slice(0, 4), '--screen-samples', '8', '--agent', 'dqn', '--max-evaluations', '10', '--episodes', '40', '--seed', '3', '--proposals', '4'];
  const runs = [];
  for (const jobs of [1, 2, 4]) {
    const out = join(ws.dir, `jobs${jobs}`);
    const r = await trtmix(['search', ...options, '--jobs', String(jobs), '--out', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout);
    assert.equal(doc.proposals, 4);
    assert.match(doc.workers, jobs === 1 ? /^this process$/ : new RegExp(`^${jobs} worker threads`));
    assert.ok(doc.evaluations <= 10);
    runs.push({ out, history: historyWithoutTiming(out), policy: policyWithoutTiming(readJson(join(out, 'policy.json'))) });
    const report = readFileSync(join(out, 'report.html'), 'utf8');
    assert.match(report, /evaluation throughput/);
    assert.match(report, new RegExp(`4 proposed per round on ${jobs === 1 ? 'this process' : `${jobs} worker threads`}`));
  }
  assert.ok(runs[0].history.length > 4, 'the search measured several rounds');
  assert.deepEqual(runs[1].history, runs[0].history);
  assert.deepEqual(runs[2].history, runs[0].history);
  assert.deepEqual(runs[1].policy, runs[0].policy);
  assert.deepEqual(runs[2].policy, runs[0].policy);
});

test('--jobs and --proposals must be whole numbers >= 1 (one line, exit 2)', async () => {
  const ws = workspace('search-jobs-bad');
  for (const [flag, value] of [['--jobs', '0'], ['--proposals', '1.5']]) {
    const r = await trtmix(['search', '--model', ws.model, '--data', ws.data, ...FAST, flag, value, '--out', join(ws.dir, 'x')]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`${flag} must be a whole number >= 1`));
  }
});

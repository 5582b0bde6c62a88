/**
 * Ctrl-C during a search: trtmix stops at the next evaluation with exit code 130, keeps the best policy and marks the
 * checkpoint interrupted; `--resume` with the same options replays the recorded evaluations and finishes where an
 * uninterrupted run with the same seed finishes (policy.json and history.jsonl equal up to timing fields).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { collect, FAST, start, trtmix, workspace, historyWithoutTiming, policyWithoutTiming } from './cli-helpers.ts';

const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8'));


async function interruptAndResume(name: string, extra: string[]): Promise<void> {
  const ws = workspace(name);
  // Enough episodes that the run is still going when the first evaluations are on disk (a few seconds in all).
  const fast = extra.includes('--screen-samples') ? FAST.slice(0, 4) : FAST;
  const options = ['--model', ws.model, '--data', ws.data, ...fast, '--agent', 'dqn', '--episodes', '60', '--seed', '7', ...extra];
  const reference = join(ws.dir, 'reference');
  const interrupted = join(ws.dir, 'interrupted');

  const uninterrupted = trtmix(['search', ...options, '--out', reference]);
  const child = start(['search', ...options, '--out', interrupted]);
  const done = collect(child);
  const historyPath = join(interrupted, 'history.jsonl');
  while (!(existsSync(historyPath) && statSync(historyPath).size > 0)) {
    assert.equal(child.exitCode, null, 'the search ended before its first evaluation was recorded');
    await sleep(25);
  }
  child.kill('SIGINT');
  const r = await done;

  assert.equal(r.code, 130, r.stderr);
  assert.match(r.stderr, /stopping after the current evaluation; the best policy so far is kept/);
  assert.doesNotMatch(r.stderr, /^\s+at /m);
  assert.match(r.stdout, /search interrupted; resume with: trtmix search .*--out \S*interrupted --resume$/m);
  assert.equal((r.stdout.match(/--out/g) ?? []).length, 1, 'the resume command names --out once');
  const checkpoint = readJson(join(interrupted, 'checkpoint.json'));
  assert.equal(checkpoint.status, 'interrupted');
  const recorded = historyWithoutTiming(interrupted);
  assert.equal(checkpoint.measurements, recorded.length);
  if (recorded.some((h) => h.feasible)) {
    const policy = readJson(join(interrupted, 'policy.json'));
    assert.equal(policy.version, 1);
    assert.equal(policy.layers.length, 5);
  }
  assert.equal(existsSync(join(interrupted, 'trtexec.txt')), false, 'exports wait for a finished search');

  const ref = await uninterrupted;
  assert.equal(ref.code, 0, ref.stderr);
  assert.ok(recorded.length < historyWithoutTiming(reference).length, 'the interrupted run stopped early');

  const refused = await trtmix(['search', ...options, '--out', interrupted]);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /already holds a search; continue it with --resume/);
  const otherSeed = await trtmix(['search', ...options, '--seed', '8', '--out', interrupted, '--resume']);
  assert.equal(otherSeed.code, 2);
  assert.match(otherSeed.stderr, /was searched with other options \(seed\)/);

  const resumed = await trtmix(['search', ...options, '--out', interrupted, '--resume', '--json']);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.equal(JSON.parse(resumed.stdout).status, 'done');
  assert.equal(readJson(join(interrupted, 'checkpoint.json')).status, 'done');
  assert.deepEqual(historyWithoutTiming(interrupted), historyWithoutTiming(reference));
  assert.deepEqual(policyWithoutTiming(readJson(join(interrupted, 'policy.json'))), policyWithoutTiming(readJson(join(reference, 'policy.json'))));
  assert.ok(existsSync(join(interrupted, 'trtexec.txt')));
}

test('SIGINT keeps the best policy and a checkpoint; --resume ends where an uninterrupted run ends', () => interruptAndResume('cli-sigint', []));

// Rounds of 3 episodes with screening: the round an interrupt cuts short is replayed, its finished scores from scores.jsonl.
test('with --proposals 3 and screening, --resume also ends where an uninterrupted run ends', () => interruptAndResume('cli-sigint-rounds', ['--proposals', '3', '--screen-samples', '8']));

/**
 * --queue when Redis cannot be reached: the search and `trtmix worker` each say so in one line and exit 2, before any
 * calibration, and no run folder is left behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FAST, assertUserError, trtmix, workspace } from './cli-helpers.ts';
import { freePort, startWorker } from './parallel-helpers.ts';

const ws = workspace('search-queue');
const options = ['--model', ws.model, '--data', ws.data, ...FAST.slice(0, 4), '--screen-samples', '8', '--agent', 'dqn', '--max-evaluations', '8', '--episodes', '30', '--seed', '4', '--proposals', '3'];

test('an unreachable Redis: the search and the worker each say so in one line, exit 2, and leave no run folder', async () => {
  const port = await freePort();
  const out = join(ws.dir, 'unreachable');
  const r = await trtmix(['search', ...options, '--queue', `redis://127.0.0.1:${port}`, '--out', out]);
  assertUserError(r, /cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\); start redis-server or fix --queue/);
  assert.equal(existsSync(join(out, 'checkpoint.json')), false);
  const w = startWorker(`redis://127.0.0.1:${port}`);
  const exit = await w.exited;
  assert.equal(exit.code, 2, w.stderr());
  assert.match(w.stderr().trim(), /^trtmix: cannot reach Redis|cannot reach Redis/);
  assert.equal(w.stderr().trim().split('\n').length, 1, w.stderr());
  const bad = await trtmix(['search', ...options, '--queue', 'http://127.0.0.1:1', '--out', out]);
  assertUserError(bad, /is not a Redis URL/);
});

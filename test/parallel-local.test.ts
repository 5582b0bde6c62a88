import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prepareExperiment } from '../src/cli/experiment.ts';
import { workerSetup } from '../src/parallel/setup.ts';
import { LocalBackend } from '../src/parallel/local.ts';
import { isUserError } from '../src/errors.ts';
import { randomPolicies, tinyExperimentArgs } from './parallel-helpers.ts';

const args = tinyExperimentArgs('trtmix-parallel-local-');

test('two worker threads score every job as the search does in process, whichever thread takes it', async () => {
  const exp = await prepareExperiment(args);
  const names = exp.loaded.layers.map((l) => l.name);
  const backend = await LocalBackend.open(workerSetup(exp, { screenSamples: 8 }), { jobs: 2, threads: 1 });
  try {
    assert.equal(backend.workers, 2);
    assert.match(backend.description, /^2 worker threads/);
    const jobs = randomPolicies(names, 6, 'local-backend').flatMap((policy) => [{ policy, subset: true }, { policy, subset: false }]);
    const outcomes = await Promise.all(jobs.map((j) => backend.score(j)));
    for (const [i, j] of jobs.entries()) {
      const want = (await exp.evaluator.evaluate(j.policy, j.subset ? { samples: 8 } : {})).score;
      assert.ok(Object.is(outcomes[i].score, want), `job ${i}: ${outcomes[i].score} vs in process ${want}`);
    }
    assert.deepEqual(new Set(outcomes.map((o) => o.worker)), new Set(['thread 1', 'thread 2']), 'both threads took jobs');
  } finally {
    await backend.close();
  }
  await assert.rejects(backend.score({ policy: {}, subset: false }), /closed/);
});

test('a setup the workers refuse is a UserError from open (its threads stopped: the file would not end otherwise)', async () => {
  const exp = await prepareExperiment(args);
  const setup = { ...workerSetup(exp, { screenSamples: 8 }), version: '0.0.1' };
  await assert.rejects(LocalBackend.open(setup, { jobs: 2, threads: 1 }), (e: unknown) => isUserError(e) && /search runs trtmix 0\.0\.1/.test((e as Error).message));
});

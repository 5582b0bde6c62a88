import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { prepareExperiment, type ExperimentArgs } from '../src/cli/experiment.ts';
import { workerSetup, openSetup, encodeSetup, decodeSetup, setupId, TRTMIX_VERSION } from '../src/parallel/setup.ts';
import { isUserError } from '../src/errors.ts';
import { randomPolicies } from './parallel-helpers.ts';
import { tinyCnnFixture } from './fixtures/models.ts';

const fx = tinyCnnFixture('trtmix-parallel-setup-', 'parallel-setup-data');
const args: ExperimentArgs = { model: fx.model, data: fx.data, 'calib-samples': 16, 'eval-samples': 24, metric: 'cosine', seed: 2 };

test('a worker rebuilt from the setup (through its JSON text) scores bit-identically to the search, subset, full and with confidence', async () => {
  const exp = await prepareExperiment(args);
  const names = exp.loaded.layers.map((l) => l.name);
  const plain = workerSetup(exp, { screenSamples: 8 });
  assert.equal(plain.version, TRTMIX_VERSION);
  assert.equal(plain.args.model, fx.model, 'paths are absolute');
  assert.equal(plain.fp32Score, exp.evaluator.fp32Score);
  const text = encodeSetup(plain);
  const decoded = decodeSetup(text);
  assert.deepEqual(decoded, plain, 'the histograms come back as Float64Arrays, every number exactly');
  assert.equal(setupId(decoded), setupId(plain));

  const worker = await openSetup(decoded, { worker: 'test' });
  assert.equal(worker.exp.calibration.stats, decoded.calibration.stats, "the worker uses the producer's statistics, not its own");
  for (const policy of randomPolicies(names, 4, 'setup-round-trip')) {
    const subset = await worker.score({ policy, subset: true });
    assert.ok(Object.is(subset.score, (await exp.evaluator.evaluate(policy, { samples: 8 })).score), 'subset score');
    const full = await worker.score({ policy, subset: false });
    assert.ok(Object.is(full.score, (await exp.evaluator.evaluate(policy)).score), 'full score');
    assert.equal(full.dropBound, undefined);
    assert.equal(full.worker, 'test');
    assert.ok(full.seconds >= 0);
  }

  const withConfidence = await openSetup(decodeSetup(encodeSetup(workerSetup(exp, { screenSamples: 8, confidence: 0.9 }))), { worker: 'c' });
  for (const policy of randomPolicies(names, 2, 'setup-confidence')) {
    const got = await withConfidence.score({ policy, subset: false });
    const want = await exp.evaluator.figures(policy, { confidence: 0.9 });
    assert.ok(Object.is(got.score, want.score));
    assert.equal(typeof got.dropBound, 'number');
    assert.ok(Object.is(got.dropBound, want.dropBound), 'drop bound');
  }
});

test('a worker refuses, in one line each, another version, another model behind the path, another FP32 score', async () => {
  const exp = await prepareExperiment(args);
  const setup = workerSetup(exp, { screenSamples: 8 });
  const refused = async (s: typeof setup, pattern: RegExp) => {
    await assert.rejects(openSetup(s, { worker: 't' }), (e: unknown) => isUserError(e) && pattern.test((e as Error).message) && !(e as Error).message.includes('\n'));
  };
  await refused({ ...setup, version: '0.0.1' }, new RegExp(`runs trtmix ${TRTMIX_VERSION.replace(/\./g, '\\.')} but the search runs trtmix 0\\.0\\.1; install the same`));
  await refused({ ...setup, modelSha256: 'f'.repeat(64) }, /model file .*tiny\.onnx on this worker \(sha256 [0-9a-f]{12}\) is not the search's \(sha256 ffffffffffff\)/);
  await refused({ ...setup, args: { ...setup.args, data: join(fx.dir, 'gone.npy') } }, /data file .*gone\.npy does not exist on this worker; .*share that folder/);
  await refused({ ...setup, fp32Score: setup.fp32Score + 1e-9 }, /FP32 score .* differs from the search's/);
  // The same data file rewritten is another file, even at the same path.
  const copy = tinyCnnFixture('trtmix-parallel-setup-', 'other-data');
  writeFileSync(copy.model, 'not the model');
  await refused({ ...setup, args: { ...setup.args, model: copy.model } }, /is not the search's/);
});

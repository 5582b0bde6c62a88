/**
 * The qdq-onnx export of a real search result on the built-in example (a short random search, so that the best
 * policy mixes int8, mixed and fp16 layers): it loads in onnxruntime, obeys the Q/DQ rules node by node, and
 * scores within the stated tolerance of the score the search recorded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSearch } from '../src/search/run.ts';
import { decodeModel } from '../src/onnx/model.ts';
import { runModel } from '../src/quant/evaluator.ts';
import { charAccuracy, decodeAll } from '../experiments/ppocr/char-accuracy.mjs';
import { checkQdqRules } from './export-qdq-rules.ts';
import { buildQdqModel } from '../src/export/qdq-onnx.ts';
import type { LayerPolicy } from '../src/policy.ts';

/** The tolerance held for policies with fp16 layers (see test/export-qdq.test.ts); all-int8 is bit-identical. */
const SCORE_TOLERANCE = 0.015;

test('model.qdq.onnx of a search on the built-in example: Q/DQ rules and the recorded score', { timeout: 300_000 }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'trtmix-search-ppocr-'));
  const result = await runSearch(
    { agent: 'random', episodes: 3, seed: 1, 'calib-samples': 16, 'eval-samples': 48, 'test-samples': 16, 'screen-samples': 0, 'max-drop': 0.5, out, target: 't4' },
    { quiet: true, log: () => {} },
  );
  const policy = result.policy!;
  assert.ok(policy, 'the search found a feasible policy');
  const precisions = new Set(policy.layers.map((l) => l.precision));
  assert.ok(precisions.size >= 2, `the policy mixes precisions: ${[...precisions]}`);
  const exp = result.setup.exp;
  const qdq = decodeModel(readFileSync(join(out, 'model.qdq.onnx')));
  const lp: LayerPolicy = Object.fromEntries(policy.layers.map((l) => [l.name, { precision: l.precision }]));
  const { placement } = buildQdqModel(exp.loaded.model, exp.loaded.graph, exp.loaded.layers, policy);
  checkQdqRules(qdq, exp.loaded.graph, exp.loaded.layers, lp, placement.kernelOutput);
  const outputs = await runModel(qdq, exp.split.eval, 16);
  const score = charAccuracy(decodeAll(outputs), exp.split.eval.labels as string[]);
  assert.ok(Math.abs(score - policy.metrics.score) <= SCORE_TOLERANCE, `qdq ${score} vs simulated ${policy.metrics.score}`);
});

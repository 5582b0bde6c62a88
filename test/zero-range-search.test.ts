/**
 * A tensor that is 0 on every calibration sample — the zero-initialised classifier head of torchvision's ViT-B/16
 * (bench/coverage/large) — has amax 0. The search simulates it with the smallest INT8 scale; it must also write that
 * positive range into policy.json, so that its own exports and replay accept the policy (they refuse amax 0).
 * The zeroed layer is the first Conv: its output feeds the depthwise Conv, which INT8 suits (the fixture's Gemm and
 * MatMul are too narrow for INT8 kernels, so their tensors are never quantized).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { saveModel } from '../src/onnx/model.ts';
import { floatTensor } from '../src/onnx/tensor.ts';
import { MIN_SCALE, INT8_MAX } from '../src/quant/int8.ts';
import { tinyCnn } from './fixtures/models.ts';
import { trtmix, workspace } from './cli-helpers.ts';

test('an all-zero tensor gets the smallest positive amax: search, export and replay accept its policy', async () => {
  const ws = workspace('zero-range');
  const model = tinyCnn();
  const init = model.graph!.initializer!;
  for (const name of ['w1', 'b1']) {
    const i = init.findIndex((t) => t.name === name);
    const dims = (init[i].dims ?? []).map(Number);
    init[i] = floatTensor(name, dims, new Float32Array(dims.reduce((a, b) => a * b, 1)));
  }
  const path = join(ws.dir, 'zero-head.onnx');
  saveModel(model, path);
  const out = join(ws.dir, 'run');
  const common = ['--model', path, '--data', ws.data, '--metric', 'agreement'];
  const search = await trtmix(['search', ...common, '--agent', 'int8', '--calib-samples', '16', '--eval-samples', '16', '--analysis-samples', '8', '--out', out, '--quiet']);
  assert.equal(search.code, 0, search.stderr);
  const policy = JSON.parse(readFileSync(join(out, 'policy.json'), 'utf8'));
  assert.equal(policy.calibration.amax.r1, MIN_SCALE * INT8_MAX, 'the first Conv\'s output is 0 on every sample');
  assert.ok(Object.values(policy.calibration.amax).every((a) => typeof a === 'number' && a > 0));
  for (const f of ['model.qdq.onnx', 'calibration.cache', 'trtexec.txt']) assert.ok(existsSync(join(out, f)), f);
  const replay = await trtmix(['replay', join(out, 'policy.json'), ...common, '--quiet']);
  assert.equal(replay.code, 0, replay.stderr);
});

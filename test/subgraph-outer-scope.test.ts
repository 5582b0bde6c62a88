/**
 * Post-processing in an If whose branch reads tensors of the main graph by name (ONNX outer scope), as
 * `torch.cond` exports it (bench/coverage/models/grid_detector_cond): the analysis runs the model from cuts, and
 * model.qdq.onnx is pruned to what the outputs need — both must keep the producers and initializers that only the
 * branch reads, or onnxruntime refuses the model ("Nodes in a graph must be topologically sorted").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GraphProto } from '../src/onnx/model.ts';
import { saveModel } from '../src/onnx/model.ts';
import { floatTensor, makeAttr } from '../src/onnx/tensor.ts';
import { createSession } from '../src/onnx/runtime.ts';
import { makeModel, randomTensor, valueInfo } from './fixtures/models.ts';
import { trtmix, workspace } from './cli-helpers.ts';

/** x [N,3,8,8] -> Conv -> GlobalAveragePool -> Flatten -> h [N,8]; if max(h) > 0: y = h W (W an outer
 * initializer), else y = h. Only the then-branch reads W and, with the else-branch, h. */
function outerScopeIf() {
  const then: GraphProto = {
    name: 'refine', node: [{ name: 'refine', opType: 'MatMul', input: ['h', 'w_refine'], output: ['y_then'] }],
    output: [valueInfo('y_then', ['N', 8])],
  };
  const otherwise: GraphProto = {
    name: 'keep', node: [{ name: 'keep', opType: 'Identity', input: ['h'], output: ['y_else'] }],
    output: [valueInfo('y_else', ['N', 8])],
  };
  return makeModel([
    { name: 'conv', opType: 'Conv', input: ['x', 'w_conv'], output: ['c'], attribute: [makeAttr.ints('kernel_shape', [3, 3])] },
    { name: 'gap', opType: 'GlobalAveragePool', input: ['c'], output: ['g'] },
    { name: 'flat', opType: 'Flatten', input: ['g'], output: ['h'], attribute: [makeAttr.int('axis', 1)] },
    { name: 'max', opType: 'ReduceMax', input: ['h'], output: ['m'], attribute: [makeAttr.int('keepdims', 0)] },
    { name: 'found', opType: 'Greater', input: ['m', 'zero'], output: ['cond'] },
    { name: 'cond', opType: 'If', input: ['cond'], output: ['y'], attribute: [
      { name: 'then_branch', type: 5, g: then }, { name: 'else_branch', type: 5, g: otherwise },
    ] },
  ], [valueInfo('x', ['N', 3, 8, 8])], [valueInfo('y', ['N', 8])],
  [randomTensor('w_conv', [8, 3, 3, 3], 'outer-conv'), randomTensor('w_refine', [8, 8], 'outer-refine'), floatTensor('zero', [], [0])]);
}

test('an If branch reading main-graph tensors: analyze, search, export and replay run, model.qdq.onnx loads', async () => {
  const ws = workspace('outer-scope');
  const path = join(ws.dir, 'cond.onnx');
  saveModel(outerScopeIf(), path);
  const common = ['--model', path, '--data', ws.data, '--metric', 'cosine', '--calib-samples', '16', '--eval-samples', '16'];
  const analysis = join(ws.dir, 'analysis');
  const analyze = await trtmix(['analyze', ...common, '--analysis-samples', '8', '--no-png', '--out', analysis, '--quiet']);
  assert.equal(analyze.code, 0, analyze.stderr);
  const layers = JSON.parse(readFileSync(join(analysis, 'analysis.json'), 'utf8')).layers.map((l: { name: string }) => l.name);
  assert.deepEqual(layers, ['conv'], 'the MatMul inside the branch is not a decided layer');
  const out = join(ws.dir, 'run');
  const search = await trtmix(['search', ...common, '--agent', 'int8', '--analysis', join(analysis, 'analysis.json'), '--out', out, '--quiet']);
  assert.equal(search.code, 0, search.stderr);
  assert.ok(existsSync(join(out, 'model.qdq.onnx')));
  const session = await createSession(new Uint8Array(readFileSync(join(out, 'model.qdq.onnx'))));
  await session.release();
  const replay = await trtmix(['replay', join(out, 'policy.json'), ...common.slice(0, 6), '--quiet']);
  assert.equal(replay.code, 0, replay.stderr);
});

/**
 * A small model for the export tests, built in code, with what trips exports up in real models: a Conv + ReLU,
 * a Conv whose fused group is BatchNorm + a decomposed hardswish of unnamed nodes (PP-LCNet style), names where
 * one is a prefix of another (conv1 / conv10), a name with ':', a Gemm whose output channels are the weight's
 * second axis, and a MatMul between two activations.
 * Its policy uses every action and takes amax from real activations (max |x| over one probe).
 */
import { createHash } from 'node:crypto';
import type { ModelProto, NodeProto } from '../src/onnx/model.ts';
import { encodeModel } from '../src/onnx/model.ts';
import { floatTensor, int64Tensor, makeAttr } from '../src/onnx/tensor.ts';
import { discoverLayers } from '../src/onnx/layers.ts';
import { probeTensors } from '../src/onnx/runtime.ts';
import type { Graph } from '../src/onnx/graph.ts';
import type { Layer } from '../src/onnx/layer-types.ts';
import type { PolicyFile, Precision } from '../src/policy.ts';
import { makeModel, randomTensor, valueInfo, randomInput } from './fixtures/models.ts';

export function exportTestModel(): ModelProto {
  const init = [
    randomTensor('w1', [4, 3, 3, 3], 'w1'), randomTensor('b1', [4], 'b1', 0.1),
    randomTensor('w10', [4, 4, 1, 1], 'w10'),
    randomTensor('bn_scale', [4], 'bn_scale', 1), randomTensor('bn_bias', [4], 'bn_bias', 0.2),
    randomTensor('bn_mean', [4], 'bn_mean', 0.1), floatTensor('bn_var', [4], [1, 0.5, 2, 1.5]),
    floatTensor('three', [], [3]), floatTensor('zero', [], [0]), floatTensor('six', [], [6]),
    randomTensor('w3', [4, 4, 3, 3], 'w3'),
    randomTensor('wfc', [4, 5], 'wfc'), randomTensor('bfc', [5], 'bfc', 0.1),
    int64Tensor('tshape', [3], [-1, 4, 64]),
  ];
  const nodes: NodeProto[] = [
    { name: 'conv1', opType: 'Conv', input: ['x', 'w1', 'b1'], output: ['c1'], attribute: [makeAttr.ints('pads', [1, 1, 1, 1])] },
    { name: 'relu1', opType: 'Relu', input: ['c1'], output: ['r1'] },
    { name: 'conv10', opType: 'Conv', input: ['r1', 'w10'], output: ['c10'] },
    { name: 'bn10', opType: 'BatchNormalization', input: ['c10', 'bn_scale', 'bn_bias', 'bn_mean', 'bn_var'], output: ['b10'] },
    { name: '', opType: 'Add', input: ['b10', 'three'], output: ['a10'] },
    { name: '', opType: 'Clip', input: ['a10', 'zero', 'six'], output: ['cl10'] },
    { name: '', opType: 'Mul', input: ['b10', 'cl10'], output: ['m10'] },
    { name: '', opType: 'Div', input: ['m10', 'six'], output: ['hs10'] },
    { name: 'block:conv', opType: 'Conv', input: ['hs10', 'w3'], output: ['c3'], attribute: [makeAttr.ints('pads', [1, 1, 1, 1])] },
    { name: 'gap', opType: 'GlobalAveragePool', input: ['c3'], output: ['g'] },
    { name: 'flat', opType: 'Flatten', input: ['g'], output: ['f'], attribute: [makeAttr.int('axis', 1)] },
    { name: 'fc', opType: 'Gemm', input: ['f', 'wfc', 'bfc'], output: ['logits'] },
    { name: 'tokens', opType: 'Reshape', input: ['c3', 'tshape'], output: ['t'] },
    { name: 'tokens_t', opType: 'Transpose', input: ['t'], output: ['tt'], attribute: [makeAttr.ints('perm', [0, 2, 1])] },
    { name: 'gram', opType: 'MatMul', input: ['t', 'tt'], output: ['gram_out'] },
  ];
  return makeModel(nodes, [valueInfo('x', ['N', 3, 8, 8])], [valueInfo('logits', ['N', 5]), valueInfo('gram_out', ['N', 4, 4])], init);
}

export const FIXTURE_PRECISIONS: Record<string, Precision> = {
  conv1: 'int8',
  conv10: 'mixed',
  'block:conv': 'fp16',
  fc: 'int8',
  gram: 'int8',
};

export interface ExportFixture {
  model: ModelProto;
  bytes: Uint8Array;
  sha256: string;
  graph: Graph;
  layers: Layer[];
  policy: PolicyFile;
}

/** The model, its discovered layers and a policy whose amax are max |x| of the tensors int8 layers use. */
export async function exportFixture(precisions: Record<string, Precision> = FIXTURE_PRECISIONS): Promise<ExportFixture> {
  const model = exportTestModel();
  const bytes = encodeModel(model);
  const { graph, layers } = await discoverLayers(model);
  const tensors = [...new Set(layers.flatMap((l) => [l.input, l.output, l.fusedOutput, ...(l.weightIsConstant ? [] : [l.weight])]))];
  const probed = await probeTensors(model, { x: { data: randomInput([1, 3, 8, 8], 'export-x'), dims: [1, 3, 8, 8] } }, tensors);
  const amax: Record<string, number> = {};
  for (const [name, t] of Object.entries(probed)) amax[name] = t.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  // As the simulator records it (src/quant/simulate.ts resolveAmax): inputs and fused outputs, not node outputs.
  for (const l of layers) if (l.output !== l.fusedOutput) delete amax[l.output];
  const policy: PolicyFile = {
    version: 1,
    model: { path: 'export-test.onnx', sha256: createHash('sha256').update(bytes).digest('hex') },
    layers: layers.map((l) => ({ name: l.name, op: l.op, precision: precisions[l.name] ?? 'fp32', macs: l.macs })),
    calibration: { method: 'max', amax },
    metrics: { score: 0.9, fp32Score: 0.91, latencyMs: 1, fp16LatencyMs: 1.2, target: 't4' },
    search: { agent: 'fixture', seed: 0, evaluations: 0, seconds: 0 },
  };
  return { model, bytes, sha256: policy.model.sha256, graph, layers, policy };
}

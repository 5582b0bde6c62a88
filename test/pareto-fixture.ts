/**
 * A model whose INT8 layers are faster on the roofline targets than their FP16 (64-channel 3x3 convs at a fixed batch of 32: compute-bound enough that the fitted roofline gives INT8 a real gain),
 * so that a search of it measures real trade-offs and its ladder has steps between all-INT8 and all-FP16; with its
 * data, written to a temporary folder. Small enough for a search of a few seconds.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { saveModel, type ModelProto, type NodeProto } from '../src/onnx/model.ts';
import { makeAttr } from '../src/onnx/tensor.ts';
import { writeNpy } from '../src/data/npy.ts';
import { makeModel, randomInput, randomTensor, valueInfo } from './fixtures/models.ts';

/** conv 16->64, 64->64, 64->64 (3x3, ReLU each), global average pool, Gemm 64->10. Input x: [32,16,16,16] (fixed batch). */
export function ladderCnn(): ModelProto {
  const channels = [16, 64, 64, 64];
  const init = [randomTensor('wg', [10, 64], 'wg'), randomTensor('bg', [10], 'bg', 0.1)];
  const nodes: NodeProto[] = [];
  let x = 'x';
  for (let i = 0; i < 3; i++) {
    init.push(randomTensor(`w${i}`, [channels[i + 1], channels[i], 3, 3], `w${i}`, 0.3), randomTensor(`b${i}`, [channels[i + 1]], `b${i}`, 0.1));
    nodes.push(
      { name: `conv${i}`, opType: 'Conv', input: [x, `w${i}`, `b${i}`], output: [`c${i}`], attribute: [makeAttr.ints('kernel_shape', [3, 3]), makeAttr.ints('pads', [1, 1, 1, 1])] },
      { name: `relu${i}`, opType: 'Relu', input: [`c${i}`], output: [`r${i}`] },
    );
    x = `r${i}`;
  }
  nodes.push(
    { name: 'gap', opType: 'GlobalAveragePool', input: [x], output: ['g'] },
    { name: 'flat', opType: 'Flatten', input: ['g'], output: ['f'], attribute: [makeAttr.int('axis', 1)] },
    { name: 'fc', opType: 'Gemm', input: ['f', 'wg', 'bg'], output: ['logits'], attribute: [makeAttr.int('transB', 1)] },
  );
  return makeModel(nodes, [valueInfo('x', [32, 16, 16, 16])], [valueInfo('logits', [32, 10])], init);
}

/** The model as model.onnx, search data x.npy (48 samples) and other data new.npy (24 samples) in a new folder. */
export function ladderFixture(prefix = 'trtmix-ladder-'): { dir: string; model: string; data: string; newData: string } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const model = join(dir, 'model.onnx');
  saveModel(ladderCnn(), model);
  const data = join(dir, 'x.npy');
  writeNpy(data, { dtype: 'float32', shape: [48, 16, 16, 16], data: randomInput([48, 16, 16, 16], 'ladder-data') });
  const newData = join(dir, 'new.npy');
  writeNpy(newData, { dtype: 'float32', shape: [24, 16, 16, 16], data: randomInput([24, 16, 16, 16], 'ladder-new', 1.5) });
  return { dir, model, data, newData };
}

// The simulation's two devices, float16 rounding (Cast to float16 and back) and fake quantization (QuantizeLinear ->
// DequantizeLinear), must run as written in trtmix's sessions: onnxruntime's optimiser collapses chains of identical
// Q/DQ pairs and Cast round trips (a Q/DQ pair straight after another is dropped even with disable_quant_qdq, so the
// rewrite never writes one), and its QDQ fusions would swap in integer kernels. bench/eval-throughput.ts (#15)
// prices these kernels as the bulk of a new policy's cost; this guards that they are computed, with TensorRT's numbers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import seedrandom from 'seedrandom';
import type { ModelProto, NodeProto } from '../src/onnx/model.ts';
import { DataType } from '../src/onnx/model.ts';
import { floatTensor, int8Tensor, makeAttr } from '../src/onnx/tensor.ts';
import { createSession, floatData, ort } from '../src/onnx/runtime.ts';
import { quantize, roundArrayToHalf } from '../src/quant/int8.ts';

const dims = [2, 3, 4, 5];
const size = dims.reduce((a, b) => a * b);

function chainModel(): ModelProto {
  const cast = (x: string, y: string, to: number): NodeProto => ({ opType: 'Cast', input: [x], output: [y], attribute: [makeAttr.int('to', to)] });
  const qdq = (x: string, y: string, s: string): NodeProto[] => [
    { opType: 'QuantizeLinear', input: [x, s, 'zero'], output: [`${y}_q`] },
    { opType: 'DequantizeLinear', input: [`${y}_q`, s, 'zero'], output: [y] },
  ];
  const node: NodeProto[] = [
    cast('x', 'x_h', DataType.FLOAT16), cast('x_h', 'rounded', DataType.FLOAT),
    ...qdq('x', 'fq_a', 'scale_a'), ...qdq('rounded', 'fq_rounded', 'scale_b'),
    { opType: 'Mul', input: ['rounded', 'three'], output: ['m'] },
    cast('m', 'm_h', DataType.FLOAT16), cast('m_h', 'm_rounded', DataType.FLOAT),
    ...qdq('m_rounded', 'm_fq', 'scale_a'),
  ];
  const out = (name: string) => ({ name, type: { tensorType: { elemType: DataType.FLOAT } } });
  return {
    irVersion: 8, opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'simulation-ops', node,
      input: [{ name: 'x', type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } }],
      output: [out('rounded'), out('fq_a'), out('fq_rounded'), out('m_fq')],
      initializer: [floatTensor('scale_a', [], [0.0625]), floatTensor('scale_b', [], [0.25]), floatTensor('three', [], [3]), int8Tensor('zero', [], new Int8Array(1))],
    },
  };
}

test('float16 rounding and fake quantization survive session optimisation with TensorRT numbers (real onnxruntime session)', async () => {
  const rng = seedrandom('simulation-ops');
  // Values up to +-12: past the range of scale 0.0625 (amax 7.94), so clamping is exercised too.
  const x = Float32Array.from({ length: size }, () => (rng() * 2 - 1) * 12);
  const session = await createSession(chainModel());
  try {
    const r = await session.run({ x: new ort.Tensor('float32', x, dims) });
    const fq = (v: Float32Array, scale: number) => v.map((e) => quantize(e, scale) * scale);
    const rounded = roundArrayToHalf(x);
    assert.deepEqual(floatData(r.rounded), rounded, 'Cast float16 -> float32 rounds to nearest even float16');
    assert.notDeepEqual(floatData(r.rounded), x, 'the round trip is not optimised away');
    // Two pairs with different scales: the second requantizes the first's values; collapsing them would be wrong.
    assert.deepEqual(floatData(r.fq_a), fq(x, 0.0625), 'Q/DQ: scale = amax / 127, ties to even, clamp to [-128, 127]');
    // The simulation's pattern for an FP16-stored tensor read by an int8 layer: rounded, then quantized.
    assert.deepEqual(floatData(r.fq_rounded), fq(rounded, 0.25));
    const m = roundArrayToHalf(Float32Array.from(rounded, (v) => Math.fround(v * 3)));
    assert.deepEqual(floatData(r.m_fq), fq(m, 0.0625));
  } finally {
    await session.release();
  }
});

/**
 * The rules model.qdq.onnx must obey for TensorRT's explicit quantization, checked node by node: int8 zero points
 * 0, positive scales, per-tensor Q/DQ on activations and per-channel DequantizeLinear on int8 weights along the
 * output-channel axis; Q/DQ only on what a quantized reader reads (a quantized layer's input, a residual Add's
 * skip input, a Concat's input), never on a layer's output for its own sake; every node's float inputs of one
 * type (the strongly typed graph TensorRT 11 builds); float32 at the model's inputs and outputs; mixed layers write
 * float16, fp16 layers compute in float16, fp32 layers in float32.
 */
import assert from 'node:assert/strict';
import { DataType, toNumber, type ModelProto, type NodeProto, type TensorProto } from '../src/onnx/model.ts';
import { tensorDims, tensorToFloat32, attrInt } from '../src/onnx/tensor.ts';
import { Graph } from '../src/onnx/graph.ts';
import type { Layer } from '../src/onnx/layer-types.ts';
import type { LayerPolicy } from '../src/policy.ts';
import { readsInt8 } from '../src/policy.ts';
import { elementTypes, FLOAT32_PARAMETER_INPUTS } from '../src/quant/op-types.ts';

const FLOATS = new Set<number>([DataType.FLOAT, DataType.FLOAT16]);
/** Ops whose inputs may differ in type by design. */
const MIXED_TYPE_OPS = new Set(['Cast', 'QuantizeLinear', 'DequantizeLinear', 'Shape', 'Size']);

/** Node-by-node check of the Q/DQ, Cast and type rules; returns counts for the caller's own assertions. */
export function checkQdqRules(qdq: ModelProto, graph: Graph, layers: readonly Layer[], lp: LayerPolicy, kernelOutput?: ReadonlyMap<string, string>) {
  const g = qdq.graph!;
  const view = new Graph(qdq);
  const types = elementTypes(view);
  const inits = new Map<string, TensorProto>((g.initializer ?? []).map((t) => [t.name!, t]));
  const producer = new Map<string, NodeProto>();
  for (const n of g.node ?? []) for (const o of n.output ?? []) producer.set(o, n);
  const values = (name: string) => tensorToFloat32(inits.get(name)!);
  const isZeroInt8 = (name: string) => inits.get(name)?.dataType === DataType.INT8 && values(name).every((v) => v === 0);
  const castTo = (n: NodeProto | undefined) => (n?.opType === 'Cast' ? attrInt(n, 'to', -1) : undefined);
  const quantizedLayers = new Set(layers.filter((l) => readsInt8(lp[l.name]?.precision ?? 'fp32')).map((l) => l.name));

  for (const n of g.node ?? []) {
    if (n.opType === 'QuantizeLinear') {
      const [, s, z] = n.input!;
      assert.ok(inits.has(s) && values(s).length === 1 && values(s)[0] > 0, `${n.name}: per-tensor positive scale`);
      assert.ok(isZeroInt8(z), `${n.name}: int8 zero point 0`);
      assert.ok(!inits.has(n.input![0]), `${n.name}: activations only (weights are stored int8)`);
      assert.equal(types.get(n.input![0]), DataType.FLOAT, `${n.name}: float32 Q/DQ (opset 13)`);
      // Read only by its DQ, whose readers are quantized readers: no Q/DQ for its own sake.
      const dqs = view.consumersOf(n.output![0]);
      assert.ok(dqs.length === 1 && dqs[0].opType === 'DequantizeLinear', `${n.name}: one DequantizeLinear`);
      for (const r of view.consumersOf(dqs[0].output![0])) {
        const reader = r.opType === 'Cast' ? view.consumersOf(r.output![0])[0] : r;
        const ok = quantizedLayers.has(reader?.name ?? '') || reader?.opType === 'Add' || reader?.opType === 'Concat';
        assert.ok(ok, `${n.name}: its DQ feeds ${reader?.opType} ${reader?.name}, not a quantized layer, a residual Add or a Concat`);
      }
    }
    if (n.opType === 'DequantizeLinear') {
      const [x, s, z] = n.input!;
      assert.ok(isZeroInt8(z), `${n.name}: int8 zero point 0`);
      assert.ok(values(s).every((v) => v > 0), `${n.name}: positive scales`);
      const weight = inits.get(x);
      if (weight) {
        assert.equal(weight.dataType, DataType.INT8, `${n.name}: int8 weights`);
        const axis = attrInt(n, 'axis', 1);
        assert.equal(values(s).length, tensorDims(weight)[axis], `${n.name}: one scale per output channel`);
      } else {
        const q = producer.get(x);
        assert.equal(q?.opType, 'QuantizeLinear', `${n.name}: reads a QuantizeLinear`);
        assert.deepEqual(q!.input!.slice(1), [s, z], `${n.name}: same scale and zero point as its Q`);
        assert.equal(values(s).length, 1, `${n.name}: activations per tensor`);
      }
    }
    if (!MIXED_TYPE_OPS.has(n.opType ?? '')) {
      const params = FLOAT32_PARAMETER_INPUTS[n.opType ?? ''] ?? [];
      const floats = (n.input ?? []).map((x, k) => [x, k] as const).filter(([x, k]) => x && !params.includes(k) && FLOATS.has(types.get(x) ?? 0));
      const kinds = new Set(floats.map(([x]) => types.get(x)));
      assert.ok(kinds.size <= 1, `${n.opType} ${n.name}: float inputs of one type (${floats.map(([x]) => `${x}:${types.get(x)}`).join(', ')})`);
    }
  }
  for (const o of g.output ?? []) assert.equal(types.get(o.name!), DataType.FLOAT, `output ${o.name} stays float32`);
  for (const i of g.input ?? []) if (!inits.has(i.name!)) assert.equal(types.get(i.name!), DataType.FLOAT, `input ${i.name} stays float32`);

  const byName = new Map((g.node ?? []).filter((n) => n.name).map((n) => [n.name!, n]));
  const dq = (t: string) => producer.get(t)?.opType === 'DequantizeLinear';
  const qdqActivation = (t: string) => dq(t) && producer.get(producer.get(t)!.input![0])?.opType === 'QuantizeLinear';
  for (const l of layers) {
    const p = lp[l.name]?.precision ?? 'fp32';
    const original = graph.nodes[l.nodeIndex];
    const node = byName.get(l.name) ?? (g.node ?? []).find((n) => !n.name && n.opType === original.opType && n.output![0] === original.output![0]);
    assert.ok(node, `${l.name}: the layer's node is kept`);
    if (readsInt8(p)) {
      assert.ok(qdqActivation(node.input![0]), `${l.name}: input through Q/DQ`);
      if (l.weightIsConstant) {
        const w = producer.get(node.input![1])!;
        assert.equal(w.opType, 'DequantizeLinear', `${l.name}: weights through DequantizeLinear`);
        assert.equal(toNumber(w.attribute!.find((a) => a.name === 'axis')!.i), l.weightAxis, `${l.name}: per-channel on the output-channel axis`);
      } else {
        assert.ok(qdqActivation(node.input![1]), `${l.name}: activation operand through Q/DQ`);
      }
      if (l.bias) assert.equal(node.input![2], original.input![2], `${l.name}: bias stays float`);
      if (p === 'mixed') {
        const t = kernelOutput?.get(l.name) ?? l.fusedOutput;
        const writer = producer.get(t);
        const half = castTo(writer) === DataType.FLOAT ? producer.get(writer!.input![0]) : writer;
        assert.equal(castTo(half), DataType.FLOAT16, `${l.name}: a mixed layer's result ${t} is cast to float16`);
      }
    } else {
      const want = p === 'fp16' ? DataType.FLOAT16 : DataType.FLOAT;
      for (const [k, x] of node.input!.entries()) {
        if (x && FLOATS.has(types.get(x) ?? 0)) assert.equal(types.get(x), want, `${l.name}: input ${k} in ${p}`);
      }
      assert.ok((node.input ?? []).every((x) => !x || !qdqActivation(x)), `${l.name}: no Q/DQ on a ${p} layer`);
    }
  }
  const count = (op: string) => (g.node ?? []).filter((n) => n.opType === op).length;
  return { q: count('QuantizeLinear'), dq: count('DequantizeLinear'), cast: count('Cast'), types, view };
}

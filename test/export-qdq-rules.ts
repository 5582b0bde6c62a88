/**
 * The rules model.qdq.onnx must obey for TensorRT's explicit quantization, checked node by node: int8 zero points
 * 0, positive scales, per-tensor Q/DQ on activations and per-channel DequantizeLinear on int8 weights along the
 * output-channel axis, Q/DQ on int8/mixed layer inputs, Q/DQ after int8 layers' fused outputs, a Cast to float16
 * after mixed ones, float16 in and a Cast back to float32 around fp16 ones, fp32 layers untouched.
 */
import assert from 'node:assert/strict';
import { DataType, toNumber, type ModelProto, type NodeProto, type TensorProto } from '../src/onnx/model.ts';
import { tensorDims, tensorToFloat32, attrInt } from '../src/onnx/tensor.ts';
import type { Graph } from '../src/onnx/graph.ts';
import type { Layer } from '../src/onnx/layer-types.ts';
import type { LayerPolicy } from '../src/policy.ts';
import { readsInt8 } from '../src/policy.ts';

/** Node-by-node check of the Q/DQ and Cast rules; returns counts for the caller's own assertions. */
export function checkQdqRules(qdq: ModelProto, graph: Graph, layers: readonly Layer[], lp: LayerPolicy) {
  const g = qdq.graph!;
  const inits = new Map<string, TensorProto>((g.initializer ?? []).map((t) => [t.name!, t]));
  const producer = new Map<string, NodeProto>();
  for (const n of g.node ?? []) for (const o of n.output ?? []) producer.set(o, n);
  const values = (name: string) => tensorToFloat32(inits.get(name)!);
  const isZeroInt8 = (name: string) => inits.get(name)?.dataType === DataType.INT8 && values(name).every((v) => v === 0);
  const castTo = (n: NodeProto | undefined) => (n?.opType === 'Cast' ? attrInt(n, 'to', -1) : undefined);

  for (const n of g.node ?? []) {
    if (n.opType === 'QuantizeLinear') {
      const [, s, z] = n.input!;
      assert.ok(inits.has(s) && values(s).length === 1 && values(s)[0] > 0, `${n.name}: per-tensor positive scale`);
      assert.ok(isZeroInt8(z), `${n.name}: int8 zero point 0`);
      assert.ok(!inits.has(n.input![0]), `${n.name}: activations only (weights are stored int8)`);
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
  }

  const byName = new Map((g.node ?? []).filter((n) => n.name).map((n) => [n.name!, n]));
  /** A node of the original graph in the rewritten one: same name, or for an unnamed node same op and output. */
  const counterpart = (orig: NodeProto): NodeProto | undefined => orig.name
    ? byName.get(orig.name)
    : (g.node ?? []).find((n) => !n.name && n.opType === orig.opType && (n.output![0] === orig.output![0] || n.output![0].startsWith(`${orig.output![0]}__`)));
  const dq = (t: string) => producer.get(t)?.opType === 'DequantizeLinear';
  const qdqActivation = (t: string) => dq(t) && producer.get(producer.get(t)!.input![0])?.opType === 'QuantizeLinear';
  const halfNodes = new Set(layers.filter((l) => lp[l.name].precision === 'fp16').map((l) => counterpart(graph.nodes[l.nodeIndex])!));

  for (const l of layers) {
    const p = lp[l.name].precision;
    const original = graph.nodes[l.nodeIndex];
    const node = counterpart(original)!;
    assert.ok(node, `${l.name}: the layer's node is kept`);
    const outputWriter = graph.producer.get(l.fusedOutput)!;
    // The writer of the fused output keeps its op; only its output is renamed (<tensor>__float / __float16).
    const writer = (g.node ?? []).find((n) => n.opType === outputWriter.opType
      && (n.output![0] === l.fusedOutput || n.output![0].startsWith(`${l.fusedOutput}__`)))!;
    assert.ok(writer, `${l.name}: the fused output's writer is kept`);
    if (p === 'fp32') {
      assert.deepEqual(node.input, original.input, `${l.name}: fp32 layers are untouched`);
      continue;
    }
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
      const out = writer.output![0];
      const readers = (g.node ?? []).filter((n) => n.input!.includes(out));
      assert.equal(readers.length, 1, `${l.name}: one reader of the group's float result`);
      if (p === 'int8') {
        assert.equal(readers[0].opType, 'QuantizeLinear', `${l.name}: int8 output through Q/DQ`);
      } else {
        assert.equal(castTo(readers[0]), DataType.FLOAT16, `${l.name}: mixed output cast to float16`);
      }
    } else {
      for (const [i, x] of node.input!.entries()) {
        const t = inits.get(x);
        if (t) assert.equal(t.dataType, DataType.FLOAT16, `${l.name}: input ${i} initializer in float16`);
        else assert.ok(castTo(producer.get(x)) === DataType.FLOAT16 || x.endsWith('__float16'), `${l.name}: input ${i} cast to float16 or the float16 output of an fp16 group`);
      }
      const readers = (g.node ?? []).filter((n) => n.input!.includes(writer.output![0]));
      // float16 goes on to fp16 layers as it is, to everything else through a Cast back to float32.
      const fp32Readers = graph.consumersOf(l.fusedOutput).filter((c) => !halfNodes.has(counterpart(c)!)).length + (graph.isGraphOutput(l.fusedOutput) ? 1 : 0);
      assert.ok(readers.every((r) => castTo(r) === DataType.FLOAT || halfNodes.has(r)), `${l.name}: the fp16 group hands float16 only to fp16 layers`);
      assert.equal(readers.some((r) => castTo(r) === DataType.FLOAT), fp32Readers > 0, `${l.name}: Cast back to float32 where a float32 reader needs it`);
    }
  }
  const count = (op: string) => (g.node ?? []).filter((n) => n.opType === op).length;
  return { q: count('QuantizeLinear'), dq: count('DequantizeLinear'), cast: count('Cast') };
}

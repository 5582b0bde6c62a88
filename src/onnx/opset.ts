/**
 * Upgrading a model's default-domain opset to 13, the first with per-channel QuantizeLinear/DequantizeLinear
 * (the `axis` attribute) that TensorRT's explicit quantization needs. Paddle2ONNX and older exporters emit opset
 * 9-12 (the PP-OCR recognizer is opset 9). Each op whose signature changed between the model's opset and 13 is
 * rewritten to the same semantics; an op we cannot rewrite is a UserError asking for a newer export.
 */
import type { GraphProto, ModelProto, NodeProto, TensorProto } from './model.ts';
import { opsetVersion, toNumber } from './model.ts';
import { attr, attrInts, attrFloat, attrString, floatTensor, int64Tensor, makeAttr } from './tensor.ts';
import { UserError } from '../errors.ts';

export const QDQ_MIN_OPSET = 13;

/** Ops trtmix cannot bring to opset 13 with the same meaning (the message asks for a newer export). */
const UNSUPPORTED: Record<string, (from: number) => boolean> = {
  Scan: (from) => from < 9, // opset 8 Scan had a batch axis and sequence_lens
  Tile: (from) => from < 6, // opset 1 Tile took (input, tiles, axis)
  ConstantFill: () => true, // experimental ops, removed from ONNX
  Upsample: (from) => from < 7,
};

/** Binary ops whose opset < 7 forms carried `broadcast` (and `axis`) attributes instead of numpy broadcasting. */
const LEGACY_BROADCAST = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'And', 'Or', 'Xor', 'Equal', 'Greater', 'Less', 'Gemm']);

/** Cast's `to` before opset 6 was a type name. */
const CAST_NAMES: Record<string, number> = {
  FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, STRING: 8, BOOL: 9, FLOAT16: 10, DOUBLE: 11, UINT32: 12, UINT64: 13,
};

interface UpgradeContext {
  from: number;
  target: number;
  /** Initializers added to the main graph (visible in every subgraph, as outer-scope values). */
  inits: TensorProto[];
  counter: number;
  /** Rank of a value where known (declared shapes), for legacy broadcasting with an axis. */
  rankOf: (name: string) => number | undefined;
  constantDims: (name: string) => number[] | undefined;
}

export function upgradeOpset(model: ModelProto, target = QDQ_MIN_OPSET): ModelProto {
  const from = opsetVersion(model);
  if (from >= target) return model;
  const g = model.graph!;
  const ranks = new Map<string, number>();
  const collect = (graph: GraphProto) => {
    for (const v of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) {
      const dims = v.type?.tensorType?.shape?.dim;
      if (v.name && dims) ranks.set(v.name, dims.length);
    }
    for (const t of graph.initializer ?? []) if (t.name) ranks.set(t.name, (t.dims ?? []).length);
  };
  collect(g);
  const initDims = new Map((g.initializer ?? []).map((t) => [t.name ?? '', (t.dims ?? []).map(toNumber)]));
  const ctx: UpgradeContext = { from, target, inits: [], counter: 0, rankOf: (n) => ranks.get(n), constantDims: (n) => initDims.get(n) };
  upgradeGraph(g, ctx);
  g.initializer = [...(g.initializer ?? []), ...ctx.inits];
  model.opsetImport = (model.opsetImport ?? []).map((o) => (!o.domain || o.domain === 'ai.onnx' ? { ...o, version: target } : o));
  if (toNumber(model.irVersion) < 7) model.irVersion = 7;
  return model;
}

/** Rewrites one graph's nodes (and, recursively, those of If/Loop/Scan bodies) to the target opset. */
function upgradeGraph(g: GraphProto, ctx: UpgradeContext): void {
  const { from, target } = ctx;
  const newNodes: NodeProto[] = [];
  const constName = (base: string) => `${base}__trtmix_opset${target}_${ctx.counter++}`;
  const addInt64 = (base: string, values: number[]) => {
    const name = constName(base);
    ctx.inits.push(int64Tensor(name, [values.length], values));
    return name;
  };
  const addFloats = (base: string, values: number[]) => {
    const name = constName(base);
    ctx.inits.push(floatTensor(name, [values.length], values));
    return name;
  };
  const dropAttrs = (n: NodeProto, names: string[]) => {
    n.attribute = (n.attribute ?? []).filter((a) => !names.includes(a.name ?? ''));
  };

  for (const n of g.node ?? []) {
    for (const a of n.attribute ?? []) {
      if (a.g) upgradeGraph(a.g, ctx);
      for (const sub of a.graphs ?? []) upgradeGraph(sub, ctx);
    }
    const op = n.opType ?? '';
    const inputs = n.input ?? [];
    const label = n.name || op;
    if (n.domain && n.domain !== 'ai.onnx') { newNodes.push(n); continue; }
    if (UNSUPPORTED[op]?.(from)) {
      throw new UserError(`the model uses ${op} at opset ${from}, which trtmix cannot upgrade to opset ${target}; re-export the model with opset ${target} or newer`);
    }
    // Opset 6 removed consumed_inputs (a memory-planning hint) from every op that had it.
    if (from < 6) dropAttrs(n, ['consumed_inputs']);
    if (from < 7 && LEGACY_BROADCAST.has(op) && (attr(n, 'broadcast') || attr(n, 'axis'))) {
      const unsqueeze = legacyBroadcast(n, ctx, label);
      if (unsqueeze) newNodes.push(unsqueeze);
    }
    if (op === 'Cast' && from < 6 && attr(n, 'to')?.s) {
      const name = new TextDecoder().decode(attr(n, 'to')!.s!).toUpperCase();
      const to = CAST_NAMES[name];
      if (to === undefined) throw new UserError(`node ${label}: Cast to ${name} (opset ${from}) is not a type trtmix knows; re-export the model with opset ${target} or newer`);
      dropAttrs(n, ['to']);
      n.attribute = [...(n.attribute ?? []), makeAttr.int('to', to)];
    } else if (op === 'Reshape' && from < 5 && attrInts(n, 'shape')) {
      const shape = attrInts(n, 'shape')!;
      dropAttrs(n, ['shape']);
      n.input = [inputs[0], addInt64(`${label}_shape`, shape)];
    } else if (op === 'Concat' && from < 4 && !attr(n, 'axis')) {
      n.attribute = [...(n.attribute ?? []), makeAttr.int('axis', 1)];
    } else if (op === 'Clip' && from < 11) {
      const lo = attr(n, 'min') ? attrFloat(n, 'min', -3.4028234663852886e38) : undefined;
      const hi = attr(n, 'max') ? attrFloat(n, 'max', 3.4028234663852886e38) : undefined;
      dropAttrs(n, ['min', 'max']);
      const ins = [inputs[0]];
      if (lo !== undefined || hi !== undefined) {
        const loName = constName(`${label}_min`);
        ctx.inits.push({ ...floatTensor(loName, [], [lo ?? -3.4028234663852886e38]) });
        ins.push(loName);
        if (hi !== undefined) {
          const hiName = constName(`${label}_max`);
          ctx.inits.push(floatTensor(hiName, [], [hi]));
          ins.push(hiName);
        }
      }
      n.input = ins;
    } else if (op === 'Slice' && from < 10) {
      const starts = attrInts(n, 'starts') ?? [];
      const ends = attrInts(n, 'ends') ?? [];
      const axes = attrInts(n, 'axes');
      dropAttrs(n, ['starts', 'ends', 'axes']);
      n.input = [inputs[0], addInt64(`${label}_starts`, starts), addInt64(`${label}_ends`, ends)];
      if (axes) n.input.push(addInt64(`${label}_axes`, axes));
    } else if ((op === 'Squeeze' || op === 'Unsqueeze' || op === 'ReduceSum') && from < 13) {
      const axes = attrInts(n, 'axes');
      dropAttrs(n, ['axes']);
      if (axes) n.input = [inputs[0], addInt64(`${label}_axes`, axes)];
    } else if (op === 'Split' && from < 13) {
      const split = attrInts(n, 'split');
      dropAttrs(n, ['split']);
      if (split) n.input = [inputs[0], addInt64(`${label}_split`, split)];
    } else if (op === 'Pad' && from < 11) {
      const pads = attrInts(n, 'pads') ?? attrInts(n, 'paddings') ?? [];
      const value = attrFloat(n, 'value', 0);
      dropAttrs(n, ['pads', 'paddings', 'value']);
      const valueName = constName(`${label}_value`);
      ctx.inits.push(floatTensor(valueName, [], [value]));
      n.input = [inputs[0], addInt64(`${label}_pads`, pads), valueName];
    } else if (op === 'TopK' && from < 10) {
      const k = attr(n, 'k');
      dropAttrs(n, ['k']);
      n.input = [inputs[0], addInt64(`${label}_k`, [toNumber(k?.i)])];
    } else if (op === 'Dropout' && from < 12) {
      dropAttrs(n, ['ratio', 'is_test']);
    } else if ((op === 'Softmax' || op === 'LogSoftmax' || op === 'Hardmax') && from < 13) {
      // Before 13 these flattened the input to 2-D at `axis`; Flatten -> op(axis=-1) -> Reshape keeps exactly that.
      const axis = attr(n, 'axis') ? toNumber(attr(n, 'axis')!.i) : 1;
      if (axis !== -1) {
        const x = inputs[0];
        const shape = constName(`${label}_shape`);
        const flat = constName(`${label}_flat`);
        const y2 = constName(`${label}_2d`);
        newNodes.push({ name: constName(`${label}_Shape`), opType: 'Shape', input: [x], output: [shape] });
        newNodes.push({ name: constName(`${label}_Flatten`), opType: 'Flatten', input: [x], output: [flat], attribute: [makeAttr.int('axis', axis)] });
        const out = (n.output ?? [])[0];
        newNodes.push({ ...n, input: [flat], output: [y2], attribute: [makeAttr.int('axis', -1)] });
        newNodes.push({ name: constName(`${label}_Reshape`), opType: 'Reshape', input: [y2, shape], output: [out] });
        continue;
      }
    } else if (op === 'BatchNormalization' && from < 9 && attr(n, 'spatial') && toNumber(attr(n, 'spatial')!.i) === 0) {
      throw new UserError(`node ${label} is a non-spatial BatchNormalization (opset ${from}); re-export the model with opset ${target} or newer`);
    } else if (op === 'BatchNormalization') {
      dropAttrs(n, ['spatial', 'is_test', 'consumed_inputs']);
    } else if (op === 'Scatter') {
      // Scatter (opset 9-10) is ScatterElements under its opset 11 name, attributes and all.
      n.opType = 'ScatterElements';
    } else if (op === 'Upsample' || (op === 'Resize' && from < 11)) {
      resizeFromUpsample(n, label, addFloats);
    }
    newNodes.push(n);
  }
  g.node = newNodes;
}

/**
 * Upsample (opset 7-9) and Resize (opset 10) as opset 13 Resize: both map output coordinates back by x / scale
 * (ONNX's `asymmetric`) and pick the floor pixel in nearest mode, which Resize names explicitly since opset 11.
 */
function resizeFromUpsample(n: NodeProto, label: string, addFloats: (base: string, values: number[]) => string): void {
  const inputs = n.input ?? [];
  const scales = attr(n, 'scales')?.floats;
  const mode = attrString(n, 'mode') ?? 'nearest';
  const scalesInput = scales && scales.length > 0 ? addFloats(`${label}_scales`, [...scales]) : inputs[1];
  if (!scalesInput) throw new UserError(`node ${label}: ${n.opType} without scales; re-export the model with opset 13 or newer`);
  n.opType = 'Resize';
  n.input = [inputs[0], '', scalesInput];
  n.attribute = [
    { name: 'mode', type: 3, s: new TextEncoder().encode(mode === 'bilinear' ? 'linear' : mode) },
    { name: 'coordinate_transformation_mode', type: 3, s: new TextEncoder().encode('asymmetric') },
    ...(mode === 'nearest' ? [{ name: 'nearest_mode', type: 3, s: new TextEncoder().encode('floor') }] : []),
  ];
}

/**
 * Opset < 7 binary ops broadcast only with `broadcast=1`, and then B's dims align with A's from `axis` on (default:
 * trailing, which is numpy broadcasting). Opset 7 made numpy broadcasting the rule; a B aligned at another axis gets
 * the trailing 1s that make numpy align it the same way.
 */
function legacyBroadcast(n: NodeProto, ctx: UpgradeContext, label: string): NodeProto | undefined {
  const axisAttr = attr(n, 'axis');
  n.attribute = (n.attribute ?? []).filter((a) => a.name !== 'broadcast' && a.name !== 'axis');
  if (!axisAttr || n.opType === 'Gemm') return undefined;
  const [a, b] = n.input ?? [];
  const rankA = ctx.rankOf(a);
  const dimsB = ctx.constantDims(b);
  const rankB = dimsB?.length ?? ctx.rankOf(b);
  if (rankA === undefined || rankB === undefined) {
    throw new UserError(`node ${label} broadcasts with an axis (opset ${ctx.from}) between tensors of unknown rank; re-export the model with opset ${ctx.target} or newer`);
  }
  let axis = toNumber(axisAttr.i);
  if (axis < 0) axis += rankA;
  const trailing = rankA - axis - rankB;
  if (trailing <= 0) return undefined;
  const shapeName = `${b}__trtmix_broadcast_${ctx.counter++}`;
  ctx.inits.push(int64Tensor(shapeName, [trailing], Array.from({ length: trailing }, (_, i) => rankB + i)));
  const expanded = `${b}__trtmix_unsqueezed_${ctx.counter++}`;
  n.input = [a, expanded, ...(n.input ?? []).slice(2)];
  // Unsqueeze in its opset 13 form (axes as an input), to run right before the node.
  return { name: `${label}__trtmix_Unsqueeze`, opType: 'Unsqueeze', input: [b, shapeName], output: [expanded] };
}

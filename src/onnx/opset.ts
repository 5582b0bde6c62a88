/**
 * Upgrading a model's default-domain opset to 13, the first with per-channel QuantizeLinear/DequantizeLinear
 * (the `axis` attribute) that TensorRT's explicit quantization needs. Paddle2ONNX and older exporters emit opset
 * 9-12 (the PP-OCR recognizer is opset 9). Each op whose signature changed between the model's opset and 13 is
 * rewritten to the same semantics; an op we cannot rewrite is a UserError asking for a newer export.
 */
import type { ModelProto, NodeProto, TensorProto } from './model.ts';
import { opsetVersion, toNumber } from './model.ts';
import { attr, attrInts, attrFloat, floatTensor, int64Tensor, makeAttr } from './tensor.ts';
import { UserError } from '../errors.ts';

export const QDQ_MIN_OPSET = 13;

const UNSUPPORTED_BELOW: Record<string, number> = { Upsample: 99, Scatter: 99 };

export function upgradeOpset(model: ModelProto, target = QDQ_MIN_OPSET): ModelProto {
  const from = opsetVersion(model);
  if (from >= target) return model;
  const g = model.graph!;
  const newInits: TensorProto[] = [];
  const newNodes: NodeProto[] = [];
  let counter = 0;
  const constName = (base: string) => `${base}__trtmix_opset${target}_${counter++}`;
  const addInt64 = (base: string, values: number[]) => {
    const name = constName(base);
    newInits.push(int64Tensor(name, [values.length], values));
    return name;
  };
  const dropAttrs = (n: NodeProto, names: string[]) => {
    n.attribute = (n.attribute ?? []).filter((a) => !names.includes(a.name ?? ''));
  };

  for (const n of g.node ?? []) {
    const op = n.opType ?? '';
    const inputs = n.input ?? [];
    const label = n.name || op;
    if (n.domain && n.domain !== 'ai.onnx') { newNodes.push(n); continue; }
    if (UNSUPPORTED_BELOW[op] !== undefined || (op === 'Resize' && from < 11)) {
      throw new UserError(`the model uses ${op} at opset ${from}, which trtmix cannot upgrade to opset ${target}; re-export the model with opset ${target} or newer`);
    }
    if (op === 'Clip' && from < 11) {
      const lo = attr(n, 'min') ? attrFloat(n, 'min', -3.4028234663852886e38) : undefined;
      const hi = attr(n, 'max') ? attrFloat(n, 'max', 3.4028234663852886e38) : undefined;
      dropAttrs(n, ['min', 'max']);
      const ins = [inputs[0]];
      if (lo !== undefined || hi !== undefined) {
        const loName = constName(`${label}_min`);
        newInits.push({ ...floatTensor(loName, [], [lo ?? -3.4028234663852886e38]) });
        ins.push(loName);
        if (hi !== undefined) {
          const hiName = constName(`${label}_max`);
          newInits.push(floatTensor(hiName, [], [hi]));
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
      const pads = attrInts(n, 'pads') ?? [];
      const value = attrFloat(n, 'value', 0);
      dropAttrs(n, ['pads', 'value']);
      const valueName = constName(`${label}_value`);
      newInits.push(floatTensor(valueName, [], [value]));
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
    }
    newNodes.push(n);
  }
  g.node = newNodes;
  g.initializer = [...(g.initializer ?? []), ...newInits];
  model.opsetImport = (model.opsetImport ?? []).map((o) => (!o.domain || o.domain === 'ai.onnx' ? { ...o, version: target } : o));
  if (toNumber(model.irVersion) < 7) model.irVersion = 7;
  return model;
}

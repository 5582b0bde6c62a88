/** Reading and making TensorProto values. */
import type { TensorProto, AttributeProto, NodeProto } from './model.ts';
import { DataType, toNumber } from './model.ts';
import { isExternal, readExternalData } from './external-data.ts';

export function tensorDims(t: TensorProto): number[] {
  return (t.dims ?? []).map(toNumber);
}

function rawView(raw: Uint8Array): DataView {
  return new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 -> IEEE half bits, round to nearest even (overflow to infinity, as a float16 cast does). */
export function floatToHalfBits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    const half = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (rem > mid || (rem === mid && (half & 1)) ? half + 1 : half);
  }
  const half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  return sign | (rem > 0x1000 || (rem === 0x1000 && (half & 1)) ? half + 1 : half);
}

export function halfBitsToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/** A tensor's raw little-endian bytes: inline raw_data, or its external data (undefined for typed fields). */
export function tensorRawBytes(t: TensorProto): Uint8Array | undefined {
  if (isExternal(t)) return readExternalData(t);
  return t.rawData && t.rawData.length > 0 ? t.rawData : undefined;
}

const bfloat16 = new Uint32Array(1);
const bfloat16View = new Float32Array(bfloat16.buffer);

/** Any numeric tensor as float32 values (row-major). */
export function tensorToFloat32(t: TensorProto): Float32Array {
  const dims = tensorDims(t);
  const n = dims.reduce((a, b) => a * b, 1);
  const dt = t.dataType ?? 0;
  const raw = tensorRawBytes(t);
  const out = new Float32Array(n);
  if (raw) {
    const v = rawView(raw);
    for (let i = 0; i < n; i++) {
      switch (dt) {
        case DataType.FLOAT: out[i] = v.getFloat32(i * 4, true); break;
        case DataType.DOUBLE: out[i] = v.getFloat64(i * 8, true); break;
        case DataType.FLOAT16: out[i] = halfBitsToFloat(v.getUint16(i * 2, true)); break;
        case DataType.BFLOAT16: bfloat16[0] = v.getUint16(i * 2, true) << 16; out[i] = bfloat16View[0]; break;
        case DataType.INT8: out[i] = v.getInt8(i); break;
        case DataType.UINT8: case DataType.BOOL: out[i] = v.getUint8(i); break;
        case DataType.INT16: out[i] = v.getInt16(i * 2, true); break;
        case DataType.UINT16: out[i] = v.getUint16(i * 2, true); break;
        case DataType.INT32: out[i] = v.getInt32(i * 4, true); break;
        case DataType.UINT32: out[i] = v.getUint32(i * 4, true); break;
        case DataType.INT64: out[i] = Number(v.getBigInt64(i * 8, true)); break;
        case DataType.UINT64: out[i] = Number(v.getBigUint64(i * 8, true)); break;
        default: throw new Error(`unsupported tensor data type ${dt} in ${t.name}`);
      }
    }
    return out;
  }
  const src: ArrayLike<unknown> =
    dt === DataType.FLOAT ? t.floatData ?? [] :
    dt === DataType.DOUBLE ? t.doubleData ?? [] :
    dt === DataType.INT64 ? t.int64Data ?? [] :
    dt === DataType.UINT32 || dt === DataType.UINT64 ? t.uint64Data ?? [] :
    t.int32Data ?? [];
  if (dt === DataType.FLOAT16) {
    for (let i = 0; i < n; i++) out[i] = halfBitsToFloat(Number((t.int32Data ?? [])[i]));
    return out;
  }
  if (dt === DataType.BFLOAT16) {
    for (let i = 0; i < n; i++) { bfloat16[0] = Number((t.int32Data ?? [])[i]) << 16; out[i] = bfloat16View[0]; }
    return out;
  }
  for (let i = 0; i < Math.min(n, src.length); i++) out[i] = toNumber(src[i] as number);
  return out;
}

/** Integer tensor values (shape constants, axes) as numbers. */
export function tensorToInts(t: TensorProto): number[] {
  return Array.from(tensorToFloat32(t), (x) => Math.round(x));
}

/**
 * The bytes of a typed array, not copied: a tensor made from a cached array (the simulator's quantized weights)
 * is then the same bytes for every policy, which the weight store writes once (external-data.ts).
 */
function rawBytes(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

export function floatTensor(name: string, dims: number[], data: Float32Array | number[]): TensorProto {
  const arr = data instanceof Float32Array ? data : Float32Array.from(data);
  return { name, dims, dataType: DataType.FLOAT, rawData: rawBytes(arr) };
}

export function int8Tensor(name: string, dims: number[], data: Int8Array): TensorProto {
  return { name, dims, dataType: DataType.INT8, rawData: rawBytes(data) };
}

export function int64Tensor(name: string, dims: number[], data: number[]): TensorProto {
  return { name, dims, dataType: DataType.INT64, rawData: rawBytes(BigInt64Array.from(data.map((x) => BigInt(x)))) };
}

export function attr(node: NodeProto, name: string): AttributeProto | undefined {
  return (node.attribute ?? []).find((a) => a.name === name);
}

export function attrInt(node: NodeProto, name: string, fallback: number): number {
  const a = attr(node, name);
  return a && a.i !== undefined && a.i !== null ? toNumber(a.i) : fallback;
}

export function attrFloat(node: NodeProto, name: string, fallback: number): number {
  const a = attr(node, name);
  return a && a.f !== undefined && a.f !== null ? a.f : fallback;
}

export function attrInts(node: NodeProto, name: string): number[] | undefined {
  const a = attr(node, name);
  return a && a.ints && a.ints.length > 0 ? a.ints.map(toNumber) : undefined;
}

export function attrString(node: NodeProto, name: string): string | undefined {
  const a = attr(node, name);
  return a?.s ? new TextDecoder().decode(a.s) : undefined;
}

/** Attribute builders (AttributeProto.type values from the ONNX schema). */
export const makeAttr = {
  int: (name: string, i: number): AttributeProto => ({ name, type: 2, i }),
  float: (name: string, f: number): AttributeProto => ({ name, type: 1, f }),
  ints: (name: string, ints: number[]): AttributeProto => ({ name, type: 7, ints }),
  tensor: (name: string, t: TensorProto): AttributeProto => ({ name, type: 4, t }),
};

/**
 * Element types of model inputs and outputs as both sides name them: NumPy dtypes (what .npy/.npz hold) and ONNX
 * TensorProto data types (what the model declares). Data is fed in the dtype the model input takes, never
 * converted; a float16 array travels as its raw bits (Uint16Array), as onnxruntime-node takes it.
 */
import { halfBitsToFloat } from '../onnx/tensor.ts';

export type TensorDtype =
  | 'float32' | 'float16' | 'float64'
  | 'int8' | 'int16' | 'int32' | 'int64'
  | 'uint8' | 'uint16' | 'uint32' | 'uint64'
  | 'bool';

export type TypedData =
  | Float32Array | Float64Array
  | Int8Array | Int16Array | Int32Array | BigInt64Array
  | Uint8Array | Uint16Array | Uint32Array | BigUint64Array;

/** ONNX TensorProto.DataType -> dtype (types without a NumPy counterpart, e.g. bfloat16 and string, are absent). */
export const DTYPE_OF_ONNX: Readonly<Record<number, TensorDtype>> = {
  1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 9: 'bool', 10: 'float16', 11: 'float64',
  12: 'uint32', 13: 'uint64',
};

const ONNX_NAMES: Readonly<Record<number, string>> = { 8: 'string', 16: 'bfloat16', 14: 'complex64', 15: 'complex128' };

/** How a message names an ONNX element type: the NumPy dtype where one exists, else tensor(<onnx name>). */
export function onnxTypeName(elemType: number): string {
  return DTYPE_OF_ONNX[elemType] ?? `tensor(${ONNX_NAMES[elemType] ?? `type ${elemType}`})`;
}

export function isFloatDtype(d: TensorDtype): boolean {
  return d === 'float32' || d === 'float16' || d === 'float64';
}

const CONSTRUCTORS: Readonly<Record<TensorDtype, new (n: number) => TypedData>> = {
  float32: Float32Array, float16: Uint16Array, float64: Float64Array, int8: Int8Array, int16: Int16Array, int32: Int32Array,
  int64: BigInt64Array, uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array, uint64: BigUint64Array, bool: Uint8Array,
};

/** A zero-filled array of `n` elements of a dtype. */
export function typedArray(dtype: TensorDtype, n: number): TypedData {
  return new CONSTRUCTORS[dtype](n);
}

/** Values as float32 (float16 decoded from its bits, integers and booleans as numbers). */
export function toFloat32(data: TypedData | ArrayLike<number | bigint | boolean>, dtype: TensorDtype): Float32Array {
  if (data instanceof Float32Array) return data;
  const out = new Float32Array(data.length);
  if (dtype === 'float16') {
    for (let i = 0; i < out.length; i++) out[i] = halfBitsToFloat((data as Uint16Array)[i]);
  } else {
    for (let i = 0; i < out.length; i++) out[i] = Number((data as ArrayLike<number | bigint>)[i]);
  }
  return out;
}

/** onnxruntime-node's tensor type strings are the dtype names. */
export function dtypeOfOrt(type: string): TensorDtype | undefined {
  return type in CONSTRUCTORS ? (type as TensorDtype) : undefined;
}

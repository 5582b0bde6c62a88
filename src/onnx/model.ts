/**
 * Loading and saving ONNX models without loss. The schema (onnx.proto beside this file) covers IR version 10
 * fields; protobufjs decodes into message objects that encode back to the same model.
 */
import { readFileSync, existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { UserError } from '../errors.ts';
import { writeFileAtomic } from '../fs.ts';

type Int64 = number | { low: number; high: number; unsigned?: boolean; toNumber(): number };

export interface StringStringEntry { key?: string; value?: string }
export interface TensorProto {
  dims?: Int64[];
  dataType?: number;
  floatData?: number[];
  int32Data?: number[];
  int64Data?: Int64[];
  doubleData?: number[];
  uint64Data?: Int64[];
  stringData?: Uint8Array[];
  rawData?: Uint8Array;
  name?: string;
  docString?: string;
  externalData?: StringStringEntry[];
  dataLocation?: number;
}
export interface AttributeProto {
  name?: string;
  type?: number;
  f?: number;
  i?: Int64;
  s?: Uint8Array;
  t?: TensorProto;
  g?: GraphProto;
  floats?: number[];
  ints?: Int64[];
  strings?: Uint8Array[];
  tensors?: TensorProto[];
  graphs?: GraphProto[];
}
export interface NodeProto {
  input?: string[];
  output?: string[];
  name?: string;
  opType?: string;
  domain?: string;
  attribute?: AttributeProto[];
  docString?: string;
}
export interface TensorShapeDim { dimValue?: Int64; dimParam?: string }
export interface TypeProto {
  tensorType?: { elemType?: number; shape?: { dim?: TensorShapeDim[] } };
  [k: string]: unknown;
}
export interface ValueInfoProto { name?: string; type?: TypeProto; docString?: string }
export interface GraphProto {
  node?: NodeProto[];
  name?: string;
  initializer?: TensorProto[];
  input?: ValueInfoProto[];
  output?: ValueInfoProto[];
  valueInfo?: ValueInfoProto[];
  [k: string]: unknown;
}
export interface OperatorSetId { domain?: string; version?: Int64 }
export interface ModelProto {
  irVersion?: Int64;
  opsetImport?: OperatorSetId[];
  producerName?: string;
  producerVersion?: string;
  graph?: GraphProto;
  metadataProps?: StringStringEntry[];
  [k: string]: unknown;
}

/** ONNX TensorProto.DataType values used here. */
export const DataType = {
  FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10, DOUBLE: 11,
} as const;

let modelType: protobuf.Type | undefined;
function schema(): protobuf.Type {
  if (!modelType) {
    const protoPath = fileURLToPath(new URL('./onnx.proto', import.meta.url));
    const root = protobuf.parse(readFileSync(protoPath, 'utf8'), { keepCase: false }).root;
    modelType = root.lookupType('onnx.ModelProto');
  }
  return modelType;
}

/** An int64 field as a JS number (dims and attributes are far below 2^53). */
export function toNumber(v: Int64 | undefined | null): number {
  if (v === undefined || v === null) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

export function decodeModel(bytes: Uint8Array, source = 'model'): ModelProto {
  let model: ModelProto;
  try {
    model = schema().decode(bytes) as unknown as ModelProto;
  } catch (e) {
    throw new UserError(`${source} is not an ONNX model (protobuf decoding failed: ${(e as Error).message}); pass the .onnx file exported from your framework`);
  }
  if (!model.graph || !model.graph.node || model.graph.node.length === 0) {
    throw new UserError(`${source} is not an ONNX model (it has no graph nodes); pass the .onnx file exported from your framework`);
  }
  const ir = toNumber(model.irVersion);
  if (ir < 3 || ir > 12) throw new UserError(`${source} has ONNX IR version ${ir}; trtmix reads IR versions 3-11 (re-export with opset 11-21)`);
  return model;
}

export function encodeModel(model: ModelProto): Uint8Array {
  const type = schema();
  return type.encode(model as unknown as protobuf.Message).finish();
}

/** Reads and decodes an ONNX file; every way it can be wrong is a UserError naming the file. */
export function loadModel(path: string): ModelProto {
  if (!existsSync(path)) throw new UserError(`model file ${path} does not exist; check the --model path`);
  if (!statSync(path).isFile()) throw new UserError(`model path ${path} is not a file; pass the .onnx file itself`);
  const bytes = readFileSync(path);
  if (bytes.length === 0) throw new UserError(`model file ${path} is empty; re-export it`);
  return decodeModel(bytes, `model file ${path}`);
}

export function saveModel(model: ModelProto, path: string): void {
  writeFileAtomic(path, encodeModel(model));
}

/** The default-domain opset the model imports. */
export function opsetVersion(model: ModelProto): number {
  const entry = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  return entry ? toNumber(entry.version) : 0;
}

/** A deep copy that can be edited without touching the original (message objects re-decoded). */
export function cloneModel(model: ModelProto): ModelProto {
  return schema().decode(encodeModel(model)) as unknown as ModelProto;
}

/**
 * Loading and saving ONNX models without loss. The schema (onnx.proto beside this file) covers IR version 11
 * fields; protobufjs decodes into message objects that encode back to the same model. External data (weights in
 * `model.onnx.data` beside the model) is resolved at load and written back beside saved models (external-data.ts).
 */
import { readFileSync, existsSync, statSync, openSync, closeSync, writeSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { UserError } from '../errors.ts';
import { writeFileAtomic, explainWriteError } from '../fs.ts';
import { adoptExternalData, EXTERNAL_DATA_THRESHOLD, externalDataChunks, forEachTensor as forEachModelTensor, hasExternalData, isExternal, readExternalData, tensorByteLength, withExternalData } from './external-data.ts';

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
  FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, STRING: 8, BOOL: 9, FLOAT16: 10, DOUBLE: 11,
  UINT32: 12, UINT64: 13, BFLOAT16: 16,
} as const;

let modelType: protobuf.Type | undefined;
let tensorType: protobuf.Type | undefined;
function schema(): protobuf.Type {
  if (!modelType) {
    const protoPath = fileURLToPath(new URL('./onnx.proto', import.meta.url));
    const root = protobuf.parse(readFileSync(protoPath, 'utf8'), { keepCase: false }).root;
    modelType = root.lookupType('onnx.ModelProto');
    tensorType = root.lookupType('onnx.TensorProto');
  }
  return modelType;
}

/** A serialized TensorProto (the .pb files of ONNX test data). */
export function decodeTensor(bytes: Uint8Array): TensorProto {
  schema();
  return tensorType!.decode(bytes) as unknown as TensorProto;
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
  if (ir < 3 || ir > MAX_IR_VERSION) throw new UserError(`${source} has ONNX IR version ${ir}; trtmix reads IR versions 3-${MAX_IR_VERSION} (re-export with an exporter of onnx <= 1.20, opset 9-21)`);
  return model;
}

/** The newest IR version onnxruntime 1.30 loads (onnx 1.20 writes IR 13). */
export const MAX_IR_VERSION = 13;
/** protobuf cannot hold a message of 2 GiB; beyond this a saved model keeps its tensors in external data. */
export const PROTOBUF_LIMIT = 2 ** 31 - 64 * 2 ** 20;

export function encodeModel(model: ModelProto): Uint8Array {
  const type = schema();
  return type.encode(model as unknown as protobuf.Message).finish();
}

/**
 * Reads and decodes an ONNX file, its external data resolved beside it; every way it can be wrong is a UserError
 * naming the file.
 */
export function loadModel(path: string): ModelProto {
  if (!existsSync(path)) throw new UserError(`model file ${path} does not exist; check the --model path`);
  const stat = statSync(path);
  if (!stat.isFile()) throw new UserError(`model path ${path} is not a file; pass the .onnx file itself`);
  if (stat.size >= 2 ** 31) throw new UserError(`model file ${path} is ${(stat.size / 2 ** 30).toFixed(1)} GiB, more than one protobuf can hold; export it with its weights as external data (torch.onnx.export(..., external_data=True), onnx.save(m, path, save_as_external_data=True))`);
  const bytes = readFileSync(path);
  if (bytes.length === 0) throw new UserError(`model file ${path} is empty; re-export it`);
  const model = decodeModel(bytes, `model file ${path}`);
  adoptExternalData(model, path);
  return model;
}

/** Bytes the model's tensors take, inline or external. */
function tensorBytesTotal(model: ModelProto): number {
  let total = 0;
  forEachModelTensor(model, (t) => { total += isExternal(t) ? tensorByteLength(t) ?? 0 : t.rawData?.byteLength ?? 0; });
  return total;
}

/** A copy of the model whose tensors are all inline (external data read back); the model is not changed. */
function inlined(model: ModelProto, map: (t: TensorProto) => TensorProto): ModelProto {
  const graph = (g: GraphProto): GraphProto => ({
    ...g,
    initializer: (g.initializer ?? []).map(map),
    node: (g.node ?? []).map((n) => (n.attribute ?? []).some((a) => a.t || a.tensors?.length || a.g || a.graphs?.length)
      ? { ...n, attribute: n.attribute!.map((a) => ({
          ...a,
          ...(a.t ? { t: map(a.t) } : {}),
          ...(a.tensors?.length ? { tensors: a.tensors.map(map) } : {}),
          ...(a.g ? { g: graph(a.g) } : {}),
          ...(a.graphs?.length ? { graphs: a.graphs.map(graph) } : {}),
        })) }
      : n),
  });
  return { ...model, graph: graph(model.graph!) };
}

function inlineTensor(t: TensorProto): TensorProto {
  if (!isExternal(t)) return t;
  const { externalData: _e, dataLocation: _d, ...rest } = t;
  return { ...rest, rawData: readExternalData(t) };
}

/** Whether saveModel writes external data: when the model came with it, or would not fit one protobuf. */
export function savesExternalData(model: ModelProto): boolean {
  return hasExternalData(model) || tensorBytesTotal(model) > PROTOBUF_LIMIT;
}

/** The bytes of a self-contained .onnx file (no external data); a model too large for that is a UserError. */
export function encodeModelFile(model: ModelProto): Uint8Array {
  if (tensorBytesTotal(model) > PROTOBUF_LIMIT) throw new UserError('the model is larger than one ONNX file can hold (2 GiB); write it to a file (--out), where its weights go to external data beside it');
  return encodeModel(hasExternalData(model) ? inlined(model, inlineTensor) : model);
}

/**
 * Writes a model as an ONNX file (atomically). With external data (`savesExternalData`, or `externalData: true`)
 * the tensors of 1 KiB and more go to `<file>.data` beside it, located relative to the file as the ONNX spec and
 * TensorRT's parser read them; the data is written first, so a finished .onnx always finds its data.
 */
export function saveModel(model: ModelProto, path: string, opts: { externalData?: boolean } = {}): void {
  if (!(opts.externalData ?? savesExternalData(model))) {
    writeFileAtomic(path, encodeModelFile(model));
    return;
  }
  const dataName = `${basename(path)}.data`;
  const dataPath = join(dirname(path), dataName);
  const tmp = join(dirname(path), `.${dataName}.${process.pid}.${Date.now()}.tmp`);
  let fd = -1;
  try {
    fd = openSync(tmp, 'w');
    let size = 0;
    const move = (t: TensorProto): TensorProto => {
      const chunks = isExternal(t) ? externalDataChunks(t) : t.rawData && t.rawData.byteLength >= EXTERNAL_DATA_THRESHOLD ? [t.rawData] : undefined;
      if (!chunks) return t;
      const offset = Math.ceil(size / 64) * 64;
      let at = offset;
      for (const bytes of chunks) {
        for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, Math.min(1 << 30, bytes.length - done), at + done);
        at += bytes.length;
      }
      size = at;
      return withExternalData(t, { location: dataName, offset, length: at - offset });
    };
    const out = inlined(model, move);
    closeSync(fd);
    fd = -1;
    renameSync(tmp, dataPath);
    writeFileAtomic(path, encodeModel(out));
  } catch (e) {
    if (fd >= 0) closeSync(fd);
    rmSync(tmp, { force: true });
    throw explainWriteError(dataPath, e, '(nothing was overwritten)');
  }
}

/** The default-domain opset the model imports. */
export function opsetVersion(model: ModelProto): number {
  const entry = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  return entry ? toNumber(entry.version) : 0;
}

/**
 * A copy whose graphs, nodes and attributes can be edited without touching the original; tensors are shared (the
 * weights are not copied).
 */
export function structuralCopy(model: ModelProto): ModelProto {
  const graph = (g: GraphProto): GraphProto => ({
    ...g,
    node: (g.node ?? []).map((n) => ({
      ...n,
      input: [...(n.input ?? [])],
      output: [...(n.output ?? [])],
      attribute: (n.attribute ?? []).map((a) => ({ ...a, ...(a.g ? { g: graph(a.g) } : {}), ...(a.graphs?.length ? { graphs: a.graphs.map(graph) } : {}) })),
    })),
    initializer: [...(g.initializer ?? [])],
    input: [...(g.input ?? [])],
    output: [...(g.output ?? [])],
    valueInfo: [...(g.valueInfo ?? [])],
  });
  return { ...model, opsetImport: (model.opsetImport ?? []).map((o) => ({ ...o })), graph: graph(model.graph!) };
}

/** A deep copy that can be edited without touching the original (message objects re-decoded; tensors copied too). */
export function cloneModel(model: ModelProto): ModelProto {
  return schema().decode(encodeModel(model)) as unknown as ModelProto;
}

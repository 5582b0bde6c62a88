/**
 * Tensor data outside the protobuf (ONNX external data): a model's own `.data` files, found beside the model, and
 * trtmix's derived weights (int8 and float16-rounded copies of the user's), written once.
 *
 * Why one folder: onnxruntime resolves a session's external data against one folder, refuses locations that leave
 * it (symlinks are followed before the check), and cannot mix files on disk with data handed over in memory. So
 * every byte a session reads from outside its protobuf lives in one per-process folder, the weight store: a model's
 * data files are hard-linked into it (copied where a link is impossible), and a derived tensor is appended to one
 * file there the first time a session needs it. A simulated model of any policy is then a protobuf of the graph
 * alone, whatever the model's size (protobuf stops at 2 GiB), and onnxruntime maps the weights from the page cache
 * instead of receiving a copy per candidate.
 *
 * In a loaded ModelProto an external tensor's location names a file of the store; encodeModel writes it so, and
 * saveModel (model.ts) turns it back into data beside the written file.
 */
import { closeSync, copyFileSync, constants as fsConstants, existsSync, linkSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import type { AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto } from './model.ts';
import { toNumber } from './model.ts';
import { UserError } from '../errors.ts';

/** Tensors from this size on leave the protobuf of a session (onnx's convert_model_to_external_data default). */
export const EXTERNAL_DATA_THRESHOLD = 1024;
/** Offsets of derived tensors, so that onnxruntime can map them page by page. */
const ALIGNMENT = 4096;
const READ_CHUNK = 1 << 30;

/** TensorProto.DataLocation.EXTERNAL */
const EXTERNAL = 1;

/** Bytes per element of the ONNX data types that external data can hold (string tensors cannot). */
export const ELEMENT_BYTES: Readonly<Record<number, number>> = {
  1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 14: 8, 15: 16, 16: 2,
  17: 1, 18: 1, 19: 1, 20: 1, 24: 1,
};

export interface ExternalRef {
  location: string;
  offset: number;
  length: number;
}

export function isExternal(t: TensorProto): boolean {
  return t.dataLocation === EXTERNAL || (t.externalData ?? []).some((e) => e.key === 'location');
}

function entry(t: TensorProto, key: string): string | undefined {
  return (t.externalData ?? []).find((e) => e.key === key)?.value ?? undefined;
}

function elementCount(t: TensorProto): number {
  return (t.dims ?? []).map(toNumber).reduce((a, b) => a * b, 1);
}

/** Bytes a tensor's data takes (packed 4-bit types round up); undefined for types without a fixed size. */
export function tensorByteLength(t: TensorProto): number | undefined {
  const dt = t.dataType ?? 0;
  if (dt === 21 || dt === 22 || dt === 23) return Math.ceil(elementCount(t) / 2);
  const size = ELEMENT_BYTES[dt];
  return size === undefined ? undefined : size * elementCount(t);
}

export function externalRef(t: TensorProto): ExternalRef {
  const location = entry(t, 'location');
  if (!location) throw new Error(`tensor ${t.name} has external data without a location`);
  const offset = Number(entry(t, 'offset') ?? 0);
  const length = entry(t, 'length') !== undefined ? Number(entry(t, 'length')) : tensorByteLength(t) ?? 0;
  return { location, offset, length };
}

function externalFields(ref: ExternalRef): Pick<TensorProto, 'dataLocation' | 'externalData'> {
  return {
    dataLocation: EXTERNAL,
    externalData: [{ key: 'location', value: ref.location }, { key: 'offset', value: String(ref.offset) }, { key: 'length', value: String(ref.length) }],
  };
}

/** A copy of the tensor whose data lives at `ref` (inline data dropped). */
export function withExternalData(t: TensorProto, ref: ExternalRef): TensorProto {
  const { rawData: _raw, floatData: _f, int32Data: _i, int64Data: _l, doubleData: _d, uint64Data: _u, ...rest } = t;
  return { ...rest, ...externalFields(ref) };
}

/** Reads `length` bytes at `offset` of an open file. */
function readRange(fd: number, offset: number, length: number): Uint8Array {
  const out = Buffer.allocUnsafe(length);
  for (let done = 0; done < length; ) {
    const n = readSync(fd, out, done, Math.min(READ_CHUNK, length - done), offset + done);
    if (n <= 0) throw new Error(`external data ends ${length - done} bytes early`);
    done += n;
  }
  return out;
}

function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  for (let done = 0; done < bytes.length; ) {
    done += writeSync(fd, bytes, done, Math.min(READ_CHUNK, bytes.length - done), position + done);
  }
}

/** The per-process folder every session's external data comes from (see the file comment). */
class WeightStore {
  private folder?: string;
  private derivedFd = -1;
  private derivedSize = 0;
  private readonly adopted = new Map<string, string>();
  private readonly byBuffer = new WeakMap<ArrayBufferLike, Map<string, ExternalRef>>();
  private readonly byContent = new Map<string, ExternalRef>();
  private readonly fds = new Map<string, number>();

  get dir(): string | undefined {
    return this.folder;
  }

  private ensure(): string {
    if (!this.folder) {
      this.folder = mkdtempSync(join(tmpdir(), `trtmix-weights-${process.pid}-`));
      removeAtExit(this.folder, () => this.closeAll());
    }
    return this.folder;
  }

  /** A store location holding the same bytes as `source` (a user's data file): a hard link, else a copy. */
  adopt(source: string): string {
    const abs = resolve(source);
    let location = this.adopted.get(abs);
    if (location) return location;
    const dir = this.ensure();
    location = `model-data-${this.adopted.size}-${basename(abs)}`;
    const target = join(dir, location);
    try {
      linkSync(abs, target);
    } catch {
      // Another filesystem, or links to others' files forbidden (fs.protected_hardlinks): a copy (reflink where it can).
      copyFileSync(abs, target, fsConstants.COPYFILE_FICLONE);
    }
    this.adopted.set(abs, location);
    return location;
  }

  /** Where `bytes` live in the store, writing them the first time (the same bytes are written once). */
  put(bytes: Uint8Array): ExternalRef {
    let views = this.byBuffer.get(bytes.buffer);
    const key = `${bytes.byteOffset}:${bytes.byteLength}`;
    const known = views?.get(key);
    if (known) return known;
    const digest = createHash('sha256').update(bytes).digest('hex');
    let ref = this.byContent.get(digest);
    if (!ref) {
      if (this.derivedFd < 0) this.derivedFd = openSync(join(this.ensure(), 'derived.bin'), 'w+');
      const offset = Math.ceil(this.derivedSize / ALIGNMENT) * ALIGNMENT;
      writeAll(this.derivedFd, bytes, offset);
      this.derivedSize = offset + bytes.byteLength;
      ref = { location: 'derived.bin', offset, length: bytes.byteLength };
      this.byContent.set(digest, ref);
    }
    if (!views) { views = new Map(); this.byBuffer.set(bytes.buffer, views); }
    views.set(key, ref);
    return ref;
  }

  read(ref: ExternalRef): Uint8Array {
    const dir = this.folder;
    if (!dir) throw new Error(`external data ${ref.location} was never loaded into the weight store`);
    let fd = this.fds.get(ref.location);
    if (fd === undefined) {
      fd = ref.location === 'derived.bin' && this.derivedFd >= 0 ? this.derivedFd : openSync(join(dir, ref.location), 'r');
      this.fds.set(ref.location, fd);
    }
    return readRange(fd, ref.offset, ref.length);
  }

  /** Adopted user files, so that a written model can say it came with external data. */
  isModelData(location: string): boolean {
    return location.startsWith('model-data-');
  }

  private closeAll(): void {
    for (const fd of new Set([...this.fds.values(), this.derivedFd])) if (fd >= 0) try { closeSync(fd); } catch { /* already closed */ }
  }
}

function removeAtExit(dir: string, close: () => void): void {
  const remove = () => {
    close();
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', remove);
  // A signal with no other listener would end the process without 'exit'; commands that handle SIGINT themselves
  // (search) exit normally afterwards.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      if (process.listenerCount(signal) > 1) return;
      remove();
      process.removeListener(signal, onSignal);
      process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

export const weightStore = new WeightStore();

/** The raw bytes of an external tensor. */
export function readExternalData(t: TensorProto): Uint8Array {
  return weightStore.read(externalRef(t));
}

/** An external tensor's bytes, chunk by chunk (a tensor may be larger than one buffer can hold). */
export function* externalDataChunks(t: TensorProto, chunk = 64 * 2 ** 20): Generator<Uint8Array> {
  const ref = externalRef(t);
  for (let done = 0; done < ref.length; done += chunk) {
    yield weightStore.read({ location: ref.location, offset: ref.offset + done, length: Math.min(chunk, ref.length - done) });
  }
}

/** Every tensor a model holds: initializers and attribute tensors (Constant values), in subgraphs too. */
export function forEachTensor(model: ModelProto, visit: (t: TensorProto) => void): void {
  const inGraph = (g: GraphProto | null | undefined) => {
    if (!g) return;
    for (const t of g.initializer ?? []) visit(t);
    for (const n of g.node ?? []) {
      for (const a of n.attribute ?? []) {
        if (a.t) visit(a.t);
        for (const t of a.tensors ?? []) visit(t);
        inGraph(a.g);
        for (const sub of a.graphs ?? []) inGraph(sub);
      }
    }
  };
  inGraph(model.graph);
  for (const f of (model.functions ?? []) as Array<{ node?: NodeProto[] }>) inGraph({ node: f.node });
}

export function hasExternalData(model: ModelProto): boolean {
  let found = false;
  forEachTensor(model, (t) => { if (isExternal(t)) found = true; });
  return found;
}

/**
 * At load: every external tensor of the model at `modelPath` is resolved beside the model (as the ONNX spec and
 * onnxruntime resolve it, wherever trtmix runs from), checked, and re-pointed at the weight store. Tensors are
 * edited in place (the model was just decoded).
 */
export function adoptExternalData(model: ModelProto, modelPath: string): void {
  const base = dirname(resolve(modelPath));
  const model_ = basename(modelPath);
  const sizes = new Map<string, number>();
  forEachTensor(model, (t) => {
    if (!isExternal(t)) return;
    const location = entry(t, 'location');
    if (!location) throw new UserError(`${model_}: initializer ${t.name} is marked as external data but names no file; re-export the model`);
    const file = isAbsolute(location) ? location : join(base, location);
    let size = sizes.get(file);
    if (size === undefined) {
      if (!existsSync(file)) {
        throw new UserError(`${model_} keeps its weights in ${location}, which is not beside it (looked for ${file}); copy ${location} into the model's folder, under the name the exporter gave it`);
      }
      size = statSync(file).size;
      sizes.set(file, size);
    }
    const ref = externalRef(t);
    const expected = tensorByteLength(t);
    if (!Number.isFinite(ref.offset) || !Number.isFinite(ref.length) || ref.offset < 0 || ref.length < 0 || (expected !== undefined && ref.length !== expected)) {
      throw new UserError(`${model_}: the external data of initializer ${t.name} is malformed (offset ${entry(t, 'offset')}, length ${entry(t, 'length')}); re-export the model`);
    }
    if (ref.offset + ref.length > size) {
      throw new UserError(`${location} holds ${size} bytes, but ${model_} reads initializer ${t.name} up to byte ${ref.offset + ref.length}; the data file is truncated or belongs to another export: copy both files from the same export`);
    }
    Object.assign(t, externalFields({ location: weightStore.adopt(file), offset: ref.offset, length: ref.length }));
  });
}

/** Raw little-endian bytes of a tensor held inline in typed fields (old exporters' float_data, int64_data, ...). */
function typedFieldBytes(t: TensorProto): Uint8Array | undefined {
  const n = elementCount(t);
  const dt = t.dataType ?? 0;
  if (dt === 1 && t.floatData?.length === n) return new Uint8Array(Float32Array.from(t.floatData).buffer);
  if (dt === 11 && t.doubleData?.length === n) return new Uint8Array(Float64Array.from(t.doubleData).buffer);
  if (dt === 7 && t.int64Data?.length === n) return new Uint8Array(BigInt64Array.from(t.int64Data, (v) => BigInt(toNumber(v))).buffer);
  if (dt === 6 && t.int32Data?.length === n) return new Uint8Array(Int32Array.from(t.int32Data).buffer);
  return undefined;
}

const typedFieldCache = new WeakMap<TensorProto, Uint8Array | undefined>();

/** The tensor as a session should receive it: data from EXTERNAL_DATA_THRESHOLD bytes on in the store. */
function sessionTensor(t: TensorProto): TensorProto {
  if (isExternal(t)) return t;
  if (t.rawData && t.rawData.byteLength >= EXTERNAL_DATA_THRESHOLD) return withExternalData(t, weightStore.put(t.rawData));
  if (!t.rawData?.byteLength && (tensorByteLength(t) ?? 0) >= EXTERNAL_DATA_THRESHOLD) {
    if (!typedFieldCache.has(t)) typedFieldCache.set(t, typedFieldBytes(t));
    const bytes = typedFieldCache.get(t);
    if (bytes) return withExternalData(t, weightStore.put(bytes));
  }
  return t;
}

function sessionGraph(g: GraphProto): GraphProto {
  const node = (g.node ?? []).map((n): NodeProto => {
    if (!(n.attribute ?? []).some((a) => a.g || (a.graphs && a.graphs.length > 0))) return n;
    const attribute = n.attribute!.map((a): AttributeProto => (a.g || a.graphs?.length ? { ...a, ...(a.g ? { g: sessionGraph(a.g) } : {}), ...(a.graphs?.length ? { graphs: a.graphs.map(sessionGraph) } : {}) } : a));
    return { ...n, attribute };
  });
  return { ...g, node, initializer: (g.initializer ?? []).map(sessionTensor) };
}

/**
 * The model as onnxruntime sessions get it: large tensors moved to the weight store (written once, however many
 * policies use them), and the folder to resolve them in; the model itself is not changed.
 */
export function sessionModel(model: ModelProto): { model: ModelProto; externalDataFolder?: string } {
  const out: ModelProto = { ...model, graph: sessionGraph(model.graph!) };
  return hasExternalData(out) ? { model: out, externalDataFolder: weightStore.dir } : { model: out };
}

/**
 * NumPy `.npy` format (versions 1.0, 2.0 and 3.0), little-endian, C order.
 * Format reference: numpy/lib/format.py — magic `\x93NUMPY`, major/minor byte, header length
 * (uint16 in v1, uint32 in v2/v3), a Python dict literal padded with spaces to a multiple of 64 bytes
 * and ending in '\n', then the raw array bytes.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { UserError } from '../errors.ts';
import { writeFileAtomic } from '../fs.ts';

export type NpyDtype =
  | 'float16' | 'float32' | 'float64'
  | 'int8' | 'int16' | 'int32' | 'int64'
  | 'uint8' | 'uint16' | 'uint32' | 'uint64'
  | 'bool' | 'unicode';

export type NpyData =
  | Float32Array | Float64Array
  | Int8Array | Int16Array | Int32Array | BigInt64Array
  | Uint8Array | Uint16Array | Uint32Array | BigUint64Array
  | string[];

export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  /** float16 arrives as its raw bits (Uint16Array); bool as Uint8Array of 0/1; unicode as strings. */
  data: NpyData;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** descr kind+size (no byte-order char) -> dtype and item size in bytes. */
const DESCR: Record<string, [NpyDtype, number]> = {
  f2: ['float16', 2], f4: ['float32', 4], f8: ['float64', 8],
  i1: ['int8', 1], i2: ['int16', 2], i4: ['int32', 4], i8: ['int64', 8],
  u1: ['uint8', 1], u2: ['uint16', 2], u4: ['uint32', 4], u8: ['uint64', 8],
  b1: ['bool', 1],
};

const DESCR_OF: Partial<Record<NpyDtype, string>> = {
  float32: '<f4', float64: '<f8', int8: '|i1', int16: '<i2', int32: '<i4', int64: '<i8',
  uint8: '|u1', uint16: '<u2', uint32: '<u4', uint64: '<u8', bool: '|b1', float16: '<f2',
};

export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function formatShape(shape: readonly (number | string | null | undefined)[]): string {
  return `[${shape.map((d) => (d === null || d === undefined ? '?' : String(d))).join(',')}]`;
}

interface NpyHeader {
  descr: string;
  fortranOrder: boolean;
  shape: number[];
  dataOffset: number;
}

function parseHeader(bytes: Uint8Array, source: string): NpyHeader {
  const name = basename(source);
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new UserError(`${name} is not a .npy file (no NumPy magic bytes): save the array with np.save('${name}', x)`);
  }
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new UserError(`${name}: .npy header is truncated; re-save it with np.save`);
    headerLen = view.getUint32(8, true);
    start = 12;
  } else {
    throw new UserError(`${name}: unsupported .npy format version ${major}; re-save it with a current NumPy (np.save)`);
  }
  if (start + headerLen > bytes.length) {
    throw new UserError(`${name}: .npy header is truncated; re-save it with np.save`);
  }
  // v3 allows utf-8 in the header (structured field names); v1/v2 are latin-1, a subset for what we read.
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined) {
    if (/'descr'\s*:\s*\[/.test(header)) {
      throw new UserError(`${name} holds a structured (record) array; save one plain float32 array per input (np.savez(path, name=x))`);
    }
    throw new UserError(`${name}: corrupt .npy header (no dtype); re-save it with np.save`);
  }
  if (fortran === undefined || shapeText === undefined) {
    throw new UserError(`${name}: corrupt .npy header (no shape or order); re-save it with np.save`);
  }
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => Number(s.replace(/L$/, '')));
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new UserError(`${name}: corrupt .npy header (shape (${shapeText})); re-save it with np.save`);
  }
  return { descr, fortranOrder: fortran === 'True', shape, dataOffset: start + headerLen };
}

/** Typed view of `bytes`, copied when the offset is not aligned to the element size. */
function typedView<T>(
  Ctor: { new (buf: ArrayBuffer, off: number, len: number): T; BYTES_PER_ELEMENT: number },
  bytes: Uint8Array,
  count: number,
): T {
  if (bytes.byteOffset % Ctor.BYTES_PER_ELEMENT === 0 && bytes.buffer instanceof ArrayBuffer) {
    return new Ctor(bytes.buffer, bytes.byteOffset, count);
  }
  const copy = new Uint8Array(count * Ctor.BYTES_PER_ELEMENT);
  copy.set(bytes.subarray(0, copy.length));
  return new Ctor(copy.buffer, 0, count);
}

/** Parse `.npy` bytes. `source` names the file (or npz member) in error messages. */
export function parseNpy(bytes: Uint8Array, source: string): NpyArray {
  const name = basename(source);
  const h = parseHeader(bytes, source);
  const order = h.descr[0];
  const code = h.descr.slice(1);
  if (order === '>' && code !== 'u1' && code !== 'i1' && code !== 'b1') {
    throw new UserError(`${name} is big-endian (${h.descr}); convert with x.astype(x.dtype.newbyteorder('<')) and save again`);
  }
  if (code === 'O' || code.startsWith('O')) {
    throw new UserError(`${name} holds Python objects (dtype object); save a numeric array, e.g. x.astype(np.float32)`);
  }
  const count = shapeSize(h.shape);
  const body = bytes.subarray(h.dataOffset);
  const unicode = /^U(\d+)$/.exec(code);
  const known = DESCR[code];
  if (!unicode && !known) {
    throw new UserError(`${name} has unsupported dtype '${h.descr}'; save it as float32 (x.astype(np.float32))`);
  }
  const itemSize = unicode ? 4 * Number(unicode[1]) : known![1];
  if (body.length < count * itemSize) {
    throw new UserError(
      `${name} is truncated: shape ${formatShape(h.shape)} needs ${count * itemSize} data bytes, the file has ${body.length}; re-save it`,
    );
  }
  if (h.fortranOrder && h.shape.filter((d) => d > 1).length > 1) {
    throw new UserError(`${name} is in Fortran order; save np.ascontiguousarray(x) instead`);
  }
  if (unicode) {
    const chars = Number(unicode[1]);
    const codes = typedView(Uint32Array, body, count * chars);
    const data: string[] = [];
    for (let i = 0; i < count; i++) {
      let end = i * chars + chars;
      while (end > i * chars && codes[end - 1] === 0) end--;
      data.push(String.fromCodePoint(...codes.subarray(i * chars, end)));
    }
    return { dtype: 'unicode', shape: h.shape, data };
  }
  const dtype = known![0] as Exclude<NpyDtype, 'unicode'>;
  return { dtype, shape: h.shape, data: viewAs(dtype, body, count) };
}

function viewAs(dtype: Exclude<NpyDtype, 'unicode'>, body: Uint8Array, count: number): Exclude<NpyData, string[]> {
  switch (dtype) {
    case 'float32': return typedView(Float32Array, body, count);
    case 'float64': return typedView(Float64Array, body, count);
    case 'float16': return typedView(Uint16Array, body, count);
    case 'int8': return typedView(Int8Array, body, count);
    case 'int16': return typedView(Int16Array, body, count);
    case 'int32': return typedView(Int32Array, body, count);
    case 'int64': return typedView(BigInt64Array, body, count);
    case 'uint8': return typedView(Uint8Array, body, count);
    case 'uint16': return typedView(Uint16Array, body, count);
    case 'uint32': return typedView(Uint32Array, body, count);
    case 'uint64': return typedView(BigUint64Array, body, count);
    case 'bool': return typedView(Uint8Array, body, count);
  }
}

/** Read a `.npy` file; a missing file is a UserError. */
export function readNpy(path: string): NpyArray {
  return parseNpy(readUserFile(path), path);
}

export function readUserFile(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(`${path} does not exist; check the path`);
    if (code === 'EISDIR') throw new UserError(`${path} is a folder, not a file; pass the file inside it`);
    if (code === 'EACCES') throw new UserError(`${path} cannot be read (permission denied)`);
    throw e;
  }
}

/** Encode as `.npy` (version 1.0, or 2.0 when the header outgrows 64 KiB). Unicode is not written. */
export function encodeNpy(array: NpyArray): Uint8Array {
  if (array.dtype === 'unicode' || Array.isArray(array.data)) {
    throw new Error('encodeNpy: unicode arrays are not supported; write string labels as .txt');
  }
  const data = array.data as Exclude<NpyData, string[]>;
  if (data.length !== shapeSize(array.shape)) {
    throw new Error(`encodeNpy: ${data.length} values do not fill shape ${formatShape(array.shape)}`);
  }
  const shapeText = array.shape.length === 1 ? `(${array.shape[0]},)` : `(${array.shape.join(', ')})`;
  const dict = `{'descr': '${DESCR_OF[array.dtype]}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  let version = 1;
  let preamble = 10;
  // Pad so the data starts on a 64-byte boundary, as numpy does.
  let total = Math.ceil((preamble + dict.length + 1) / 64) * 64;
  if (total - preamble > 0xffff) {
    version = 2;
    preamble = 12;
    total = Math.ceil((preamble + dict.length + 1) / 64) * 64;
  }
  const header = dict + ' '.repeat(total - preamble - dict.length - 1) + '\n';
  const out = new Uint8Array(total + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = version;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, header.length, true);
  else view.setUint32(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[preamble + i] = header.charCodeAt(i);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), total);
  return out;
}

/** Write a `.npy` file atomically. */
export function writeNpy(path: string, array: NpyArray): void {
  writeFileAtomic(path, encodeNpy(array));
}

/**
 * Labels for `--labels`: `.txt` (one per line, kept as strings — a metric decides whether "3" is a
 * class index or a text), `.json` (an array of anything) or `.npy` (numbers; a row per sample for
 * 2-D arrays; strings for NumPy unicode arrays).
 */
import { basename, extname } from 'node:path';
import { UserError } from '../errors.ts';
import { formatShape, parseNpy, readUserFile, type NpyArray } from './npy.ts';

export type Label = unknown;

export function loadLabels(path: string): Label[] {
  const ext = extname(path).toLowerCase();
  if (ext !== '.txt' && ext !== '.json' && ext !== '.npy') {
    throw new UserError(`labels file ${basename(path)} must be .txt (one label per line), .json (an array) or .npy`);
  }
  const bytes = readUserFile(path);
  if (ext === '.npy') return labelsFromNpy(parseNpy(bytes, path), path);
  let text = new TextDecoder('utf-8').decode(bytes);
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (ext === '.txt') return parseLabelText(text);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${basename(path)} is not valid JSON (${(e as Error).message}); write the labels as a JSON array`);
  }
  if (!Array.isArray(parsed)) {
    throw new UserError(`${basename(path)} must hold a JSON array of labels (one per sample), found ${typeof parsed}`);
  }
  return parsed;
}

/** One label per line; CRLF accepted; the newline that ends the last line does not start another label. */
export function parseLabelText(text: string): string[] {
  if (text.length === 0) return [];
  const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  if (text.endsWith('\n')) lines.pop();
  return lines;
}

function labelsFromNpy(array: NpyArray, path: string): Label[] {
  const { shape, data } = array;
  if (array.dtype === 'float16') {
    throw new UserError(`${basename(path)} is float16; save labels as integers or float32 (y.astype(np.int64))`);
  }
  if (shape.length === 0 || shape.length > 2) {
    throw new UserError(`${basename(path)} has shape ${formatShape(shape)}; labels need one row per sample: shape [N] or [N,k]`);
  }
  const values: unknown[] = Array.isArray(data)
    ? data
    : Array.from(data as ArrayLike<number | bigint>, (v) => (typeof v === 'bigint' ? Number(v) : v));
  if (shape.length === 1) return values;
  const k = shape[1];
  const rows: Label[] = [];
  for (let i = 0; i < shape[0]; i++) rows.push(values.slice(i * k, (i + 1) * k));
  return rows;
}

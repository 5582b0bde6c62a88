import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import seedrandom from 'seedrandom';
import { loadDataset, sliceBatch } from '../src/data/index.ts';
import { readNpz } from '../src/data/npz.ts';
import metric, {
  DICTIONARY_PATH, charAccuracy, ctcGreedyDecode, decodeAll, editDistance, loadCharacters, type SampleOutputs,
} from '../experiments/ppocr/char-accuracy.mjs';
import {
  CHAR_ACCURACY_PLUGIN, DATA_DIR, exportExamplesAsNpy, loadClsExample, loadDetExample, loadRecExample,
} from '../experiments/ppocr/dataset.ts';
import { normalizeRecBatch, resizeBilinear, resizedWidth } from '../experiments/ppocr/preprocess.ts';
import { MAX_LENGTH, MIN_LENGTH, TextLineGenerator } from '../experiments/ppocr/text-lines.ts';

/** Probabilities [T, C] with the given argmax class per timestep (softmax-like rows). */
function probs(classes: number[], C: number): Float32Array {
  const p = new Float32Array(classes.length * C).fill(0.1 / (C - 1));
  classes.forEach((c, t) => (p[t * C + c] = 0.9));
  return p;
}

const TOY = ['', 'a', 'b', 'c', ' '];

test('CTC greedy decoding collapses repeats, drops blanks, keeps repeats split by a blank', () => {
  // a a _ a b b _ _ c ' ' c
  const seq = [1, 1, 0, 1, 2, 2, 0, 0, 3, 4, 3];
  assert.equal(ctcGreedyDecode(probs(seq, 5), [seq.length, 5], TOY), 'aabc c');
  assert.equal(ctcGreedyDecode(probs([0, 0, 0], 5), [3, 5], TOY), '');
  assert.throws(() => ctcGreedyDecode(probs([1], 4), [1, 4], TOY), /4 classes but the dictionary gives 5/);
  assert.throws(() => ctcGreedyDecode(probs([1], 5), [1, 1, 5], TOY), /\[T, C\]/);
});

test('the package dictionary gives the 6625 classes of the PP-OCRv4 model: blank, 6623 lines, space', () => {
  const chars = loadCharacters();
  assert.equal(chars.length, 6625);
  assert.equal(chars[0], '');
  assert.equal(chars[6624], ' ');
  const k = chars.indexOf('7');
  const line = readFileSync(DICTIONARY_PATH, 'utf8').split('\n')[k - 1];
  assert.equal(line, '7');
  const text = ['H', 'i', ' ', '4', '2'].map((c) => chars.indexOf(c));
  assert.equal(ctcGreedyDecode(probs([0, ...text, 0], 6625), [7, 6625]), 'Hi 42');
});

test('edit distance and character accuracy: definition and edge cases', () => {
  assert.equal(editDistance('kitten', 'sitting'), 3);
  assert.equal(editDistance('', 'abc'), 3);
  assert.equal(editDistance('文字', '文'), 1);
  assert.equal(editDistance('$9.55', 'S9.55'), 1);
  assert.equal(charAccuracy(['abc', 'de'], ['abc', 'de']), 1);
  // 2 errors over 10 label characters.
  assert.equal(charAccuracy(['abcdx', 'fghi'], ['abcde', 'fghij']), 0.8);
  // Long lines weigh more than short ones (corpus form, not a mean of per-line scores).
  assert.equal(charAccuracy(['', 'abcdefghi'], ['x', 'abcdefghi']), 0.9);
  // More errors than characters clip at 0.
  assert.equal(charAccuracy(['a long wrong reading'], ['ab']), 0);
  // Margin spaces are not characters of the line; inner spaces are.
  assert.equal(charAccuracy([' Open 9:30 '], ['Open 9:30']), 1);
  assert.equal(charAccuracy(['Open9:30'], ['Open 9:30']), 1 - 1 / 9);
  assert.equal(charAccuracy([], []), 1);
  assert.equal(charAccuracy([''], ['']), 1);
  assert.throws(() => charAccuracy(['a'], []), /1 predictions for 0 labels/);
});

test('the plugin follows the metric contract: per-sample outputs by name, no batch dimension', () => {
  assert.equal(metric.name, 'char-accuracy');
  assert.equal(metric.higherIsBetter, true);
  const chars = loadCharacters();
  const sample = (text: string): SampleOutputs => {
    const cls = [...text].flatMap((c) => [chars.indexOf(c), 0]);
    return { 'softmax_11.tmp_0': { data: probs(cls, 6625), dims: [cls.length, 6625] } };
  };
  const outputs = [sample('Total'), sample('2024-05-01')];
  assert.deepEqual(decodeAll(outputs), ['Total', '2024-05-01']);
  assert.equal(metric.score({ outputs, reference: outputs, labels: ['Total', '2024-05-01'] }), 1);
  assert.equal(metric.score({ outputs, reference: outputs, labels: ['Tota1', '2024-05-01'] }), 1 - 1 / 15);
  assert.throws(() => metric.score({ outputs, reference: outputs }), /needs --labels/);
});

/** A random 5x7 image and what OpenCV 4.6 cv2.resize (INTER_LINEAR) makes of it. */
const CV2 = {
  src: [168, 229, 184, 171, 238, 171, 20, 206, 245, 153, 204, 5, 37, 53, 213, 206, 192, 173, 6, 120, 63, 96, 236, 131, 118, 4, 87, 161, 124, 71, 42, 73, 237, 16, 194],
  up9x13: [168, 187, 220, 212, 187, 178, 171, 207, 233, 197, 148, 66, 20, 180, 197, 226, 211, 178, 177, 182, 170, 157, 139, 111, 60, 31, 202, 214, 237, 210, 163, 177, 200, 109, 32, 44, 51, 50, 49, 209, 215, 225, 205, 175, 179, 190, 91, 11, 47, 71, 62, 57, 213, 211, 207, 201, 193, 183, 173, 83, 15, 76, 111, 81, 63, 148, 171, 211, 198, 163, 151, 142, 68, 12, 64, 104, 113, 117, 99, 135, 199, 180, 128, 117, 113, 68, 33, 60, 92, 138, 165, 115, 118, 124, 105, 76, 79, 88, 126, 150, 86, 62, 139, 183, 124, 108, 79, 60, 44, 56, 73, 161, 220, 101, 43, 139, 194],
  down3x4: [201, 175, 163, 67, 210, 190, 27, 84, 119, 74, 150, 129],
};

test('resize_norm_img: bit-exact cv2 bilinear, width rule, [-1, 1] scaling and zero padding', () => {
  const img = { width: 7, height: 5, pixels: Uint8Array.from(CV2.src) };
  assert.deepEqual(Array.from(resizeBilinear(img, 13, 9).pixels), CV2.up9x13);
  assert.deepEqual(Array.from(resizeBilinear(img, 4, 3).pixels), CV2.down3x4);
  // cv2.resize(np.array([[0, 100]], np.uint8), (4, 1)) -> [0, 25, 75, 100]
  assert.deepEqual(Array.from(resizeBilinear({ width: 2, height: 1, pixels: Uint8Array.from([0, 100]) }, 4, 1).pixels), [0, 25, 75, 100]);
  // Downscale by 2 averages pixel pairs (half-pixel centres).
  assert.deepEqual(Array.from(resizeBilinear({ width: 4, height: 1, pixels: Uint8Array.from([0, 100, 200, 40]) }, 2, 1).pixels), [50, 120]);
  assert.equal(resizedWidth(100, 20, 48, 320), 240);
  assert.equal(resizedWidth(1000, 20, 48, 320), 320);
  assert.equal(resizedWidth(101, 30, 48, 320), 162); // ceil(161.6)
  const px = new Uint8Array(2 * 2 * 4);
  px.set([0, 255, 51, 9, 0, 255, 51, 9], 0);
  const x = normalizeRecBatch(px, [3, 0], 2, 4);
  assert.equal(x.length, 2 * 3 * 2 * 4);
  assert.deepEqual(Array.from(x.subarray(0, 4)), [-1, 1, Math.fround((Math.fround(51 / 255) - 0.5) / 0.5), 0]);
  assert.deepEqual(Array.from(x.subarray(8, 12)), Array.from(x.subarray(0, 4)));
  assert.ok(x.subarray(24).every((v) => v === 0));
});

test('text lines: seeded, 5 to 25 characters, a mix of words, digits and punctuation', () => {
  const lines = (seed: string) => {
    const g = new TextLineGenerator(seedrandom(seed));
    return Array.from({ length: 400 }, () => g.next());
  };
  const a = lines('s');
  assert.deepEqual(lines('s'), a);
  assert.notDeepEqual(lines('t'), a);
  assert.ok(a.every((l) => [...l].length >= MIN_LENGTH && [...l].length <= MAX_LENGTH));
  const chars = new Set(loadCharacters());
  assert.ok(a.every((l) => [...l].every((c) => chars.has(c))), 'every character is in the dictionary');
  const count = (re: RegExp) => a.filter((l) => re.test(l)).length;
  assert.ok(count(/^[A-Za-z ]+$/) > 40, 'plain word lines');
  assert.ok(count(/\d{4}-\d{2}-\d{2}|\d{2}\/\d{2}\/\d{4}/) > 15, 'dates');
  assert.ok(count(/\$\d/) > 15, 'prices');
  assert.ok(count(/[A-Z]{2,}.*\d|\d.*[A-Z]{2,}/) > 30, 'codes');
  assert.ok(count(/^.{18,}$/) > 40, 'long lines');
});

test('loadRecExample: [N,3,48,320] in [-1,1], grey (equal planes), zeros right of each line', () => {
  const rec = loadRecExample();
  const { data, dims } = rec.inputs.x;
  assert.deepEqual(dims, [rec.count, 3, 48, 320]);
  assert.ok(rec.count >= 300);
  assert.equal(rec.labels.length, rec.count);
  assert.ok(rec.labels.every((l) => l.length >= 5 && l.length <= 25 && l === l.trim()));
  const widths = readNpz(join(DATA_DIR, 'rec.npz')).get('widths')!.data as Int32Array;
  const plane = 48 * 320;
  let min = Infinity;
  let max = -Infinity;
  for (let s = 0; s < rec.count; s++) {
    const base = s * 3 * plane;
    assert.deepEqual(data.subarray(base + plane, base + 2 * plane), data.subarray(base, base + plane));
    assert.ok(widths[s] >= 16 && widths[s] <= 320);
    for (let y = 0; y < 48; y++) {
      for (let x = widths[s]; x < 320; x++) assert.equal(data[base + y * 320 + x], 0);
      for (let x = 0; x < widths[s]; x++) {
        const v = data[base + y * 320 + x];
        if (v < min) min = v;
        if (v > max) max = v;
      }
    }
  }
  assert.ok(min >= -1 && max <= 1);
  // Dark ink on light paper: both ends of the range are used.
  assert.ok(min < -0.6 && max > 0.6);
  const few = loadRecExample({ limit: 5 });
  assert.deepEqual(few.inputs.x.dims, [5, 3, 48, 320]);
  assert.deepEqual(few.inputs.x.data, data.subarray(0, 5 * 3 * plane));
});

test('loadClsExample and loadDetExample: shapes, balanced labels, detector sides multiples of 32', () => {
  const cls = loadClsExample();
  assert.deepEqual(cls.inputs.x.dims, [cls.count, 3, 48, 192]);
  assert.equal(cls.labels.filter((l) => l === 1).length, Math.floor(cls.count / 2));
  assert.ok(cls.labels.every((l) => l === 0 || l === 1));
  const det = loadDetExample();
  const [n, c, h, w] = det.inputs.x.dims;
  assert.equal(c, 3);
  assert.ok(n >= 1 && h % 32 === 0 && w % 32 === 0);
  assert.ok(det.labels.every((page) => page.length >= 3 && page.every((b) => b.box[2] > b.box[0] && b.box[3] > b.box[1] && b.box[2] <= w && b.box[3] <= h)));
  // ImageNet normalisation of light paper: above 1.5 in every plane.
  assert.ok(det.inputs.x.data[5] > 1.5 && det.inputs.x.data[h * w + 5] > 1.5 && det.inputs.x.data[2 * h * w + 5] > 1.5);
});

async function run(modelPath: string, x: { data: Float32Array; dims: number[] }) {
  const session = await ort.InferenceSession.create(modelPath);
  try {
    const out = await session.run({ x: new ort.Tensor('float32', x.data, x.dims) });
    return out[session.outputNames[0]];
  } finally {
    await session.release();
  }
}

function perSample(out: ort.Tensor, name: string): SampleOutputs[] {
  const dims = out.dims.slice(1);
  const size = dims.reduce((a, b) => a * b, 1);
  return Array.from({ length: out.dims[0] }, (_, s) => ({
    [name]: { data: (out.data as Float32Array).slice(s * size, (s + 1) * size), dims: [...dims] },
  }));
}

test('the real PP-OCRv4 recognizer reads 24 rendered lines with char accuracy >= 0.9 (FP32, onnxruntime)', async () => {
  const rec = loadRecExample({ limit: 24 });
  const out = await run(rec.modelPath, sliceBatch(rec, 0, 24).x);
  assert.deepEqual(out.dims, [24, 40, 6625]);
  const outputs = perSample(out, 'softmax_11.tmp_0');
  const plugin = (await import(CHAR_ACCURACY_PLUGIN)).default as typeof metric;
  const score = plugin.score({ outputs, reference: outputs, labels: rec.labels });
  assert.ok(score >= 0.9, `char accuracy ${score}`);
  // The score is not a constant: shuffled labels read as nonsense.
  assert.ok(plugin.score({ outputs, reference: outputs, labels: [...rec.labels.slice(1), rec.labels[0]] }) < 0.5);
});

test('the real direction classifier tells upright from upside-down lines (FP32 top-1 >= 0.9 on 40)', async () => {
  const cls = loadClsExample({ limit: 40 });
  const out = await run(cls.modelPath, cls.inputs.x);
  assert.deepEqual(out.dims, [40, 2]);
  const p = out.data as Float32Array;
  const correct = cls.labels.filter((l, i) => (p[2 * i + 1] > p[2 * i] ? 1 : 0) === l).length;
  assert.ok(correct / 40 >= 0.9, `top-1 ${correct}/40`);
  // A batch from sliceBatch is a view at an offset into the dataset; onnxruntime must read that offset.
  const tail = await run(cls.modelPath, sliceBatch(cls, 20, 40).x);
  const t = tail.data as Float32Array;
  t.forEach((v, i) => assert.ok(Math.abs(v - p[40 + i]) < 1e-5, `sample ${20 + (i >> 1)}: ${v} vs ${p[40 + i]}`));
});

test('the exported --data/--labels files load back through loadDataset against the model inputs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trtmix-ppocr-'));
  try {
    const files = exportExamplesAsNpy(dir);
    assert.deepEqual(files.map((f) => f.slice(dir.length + 1)), ['rec.npy', 'rec.labels.txt', 'cls.npy', 'cls.labels.txt']);
    const rec = loadRecExample();
    const session = await ort.InferenceSession.create(rec.modelPath);
    const meta = session.inputMetadata[0];
    await session.release();
    assert.ok(meta.isTensor);
    const ds = loadDataset({ dataPath: join(dir, 'rec.npy'), labelsPath: join(dir, 'rec.labels.txt'), inputs: [{ name: meta.name, dims: meta.shape }] });
    assert.equal(ds.count, rec.count);
    assert.deepEqual(ds.labels, rec.labels);
    assert.deepEqual(ds.inputs.x.data, rec.inputs.x.data);
    const cls = loadDataset({ dataPath: join(dir, 'cls.npy'), labelsPath: join(dir, 'cls.labels.txt'), inputs: [{ name: 'x', dims: [-1, 3, 48, 192] }] });
    assert.deepEqual(cls.labels!.slice(0, 4).map(Number), loadClsExample({ limit: 4 }).labels);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('render.ts reproduces the committed set from its seed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trtmix-render-'));
  try {
    execFileSync(process.execPath, ['--import', 'tsx', join(DATA_DIR, '..', 'render.ts'), '--out', dir], { stdio: 'pipe' });
    assert.equal(readFileSync(join(dir, 'rec.labels.txt'), 'utf8'), readFileSync(join(DATA_DIR, 'rec.labels.txt'), 'utf8'));
    assert.equal(readFileSync(join(dir, 'det.boxes.json'), 'utf8'), readFileSync(join(DATA_DIR, 'det.boxes.json'), 'utf8'));
    for (const file of ['rec.npz', 'cls.npz']) {
      const mine = readNpz(join(dir, file));
      const committed = readNpz(join(DATA_DIR, file));
      assert.deepEqual(mine.get('widths')!.data, committed.get('widths')!.data);
      // Same skia build and fonts give identical pixels; allow a rasteriser update a grey level on average.
      const a = mine.get('pixels')!.data as Uint8Array;
      const b = committed.get('pixels')!.data as Uint8Array;
      let diff = 0;
      for (let i = 0; i < a.length; i++) diff += Math.abs(a[i] - b[i]);
      assert.ok(diff / a.length < 1, `${file}: mean pixel difference ${diff / a.length}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

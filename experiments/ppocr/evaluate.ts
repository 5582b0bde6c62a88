/**
 * FP32 accuracy of the PP-OCR models on the built-in sets, in onnxruntime (CPU):
 *
 *   node --import tsx experiments/ppocr/evaluate.ts [--batch 16] [--show-errors]
 *
 * rec: character accuracy (char-accuracy.mjs), cls: top-1, det: fraction of rendered lines whose box
 * the probability map covers (DB binarisation at 0.3, as PaddleOCR's det_db_thresh).
 */
import * as ort from 'onnxruntime-node';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { batches, type Dataset } from '../../src/data/dataset.ts';
import { charAccuracy, decodeAll, editDistance, type SampleOutputs } from './char-accuracy.mjs';
import { loadClsExample, loadDetExample, loadRecExample, type DetBox } from './dataset.ts';

const args = yargs(hideBin(process.argv))
  .option('batch', { type: 'number', default: 16 })
  .option('show-errors', { type: 'boolean', default: false })
  .strict()
  .parseSync();

/** Runs the model over the dataset and splits the outputs per sample (batch dimension dropped). */
export async function runPerSample(modelPath: string, ds: Dataset, batchSize: number): Promise<SampleOutputs[]> {
  const session = await ort.InferenceSession.create(modelPath);
  const perSample: SampleOutputs[] = [];
  for (const { start, end, inputs } of batches(ds, batchSize)) {
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(inputs)) feeds[name] = new ort.Tensor('float32', t.data, t.dims);
    const results = await session.run(feeds);
    for (let s = 0; s < end - start; s++) {
      const sample: SampleOutputs = {};
      for (const [name, t] of Object.entries(results)) {
        const dims = t.dims.slice(1);
        const size = dims.reduce((a, b) => a * b, 1);
        sample[name] = { data: (t.data as Float32Array).slice(s * size, (s + 1) * size), dims: [...dims] };
      }
      perSample.push(sample);
    }
  }
  await session.release();
  return perSample;
}

const t0 = performance.now();
const rec = loadRecExample();
const recOut = await runPerSample(rec.modelPath, rec, args.batch);
const predictions = decodeAll(recOut);
const recAcc = charAccuracy(predictions, rec.labels);
const exact = predictions.filter((p, i) => p === rec.labels[i]).length;
console.log(`rec  char accuracy ${recAcc.toFixed(4)}  exact lines ${exact}/${rec.count}  (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
if (args.showErrors) {
  predictions.forEach((p, i) => {
    if (p !== rec.labels[i]) console.log(`  #${i} ${JSON.stringify(rec.labels[i])} -> ${JSON.stringify(p)} (${editDistance(p, rec.labels[i])})`);
  });
}

const t1 = performance.now();
const cls = loadClsExample();
const clsOut = await runPerSample(cls.modelPath, cls, args.batch);
const correct = clsOut.filter((o, i) => {
  const p = Object.values(o)[0].data;
  return (p[1] > p[0] ? 1 : 0) === cls.labels[i];
}).length;
console.log(`cls  top-1 ${(correct / cls.count).toFixed(4)}  (${correct}/${cls.count}, ${((performance.now() - t1) / 1000).toFixed(1)} s)`);

const t2 = performance.now();
const det = loadDetExample();
const detOut = await runPerSample(det.modelPath, det, 1);
let found = 0;
let total = 0;
detOut.forEach((o, p) => {
  const { data, dims } = Object.values(o)[0];
  const [, h, w] = dims;
  for (const { box } of det.labels[p] as DetBox[]) {
    total++;
    // DB predicts a shrunk text region, so test the middle row of the box away from its ends.
    const [x0, y0, x1, y1] = box;
    const ym = Math.round((y0 + y1) / 2);
    const inset = Math.round(0.1 * (x1 - x0));
    let on = 0;
    let n = 0;
    for (let x = x0 + inset; x < x1 - inset; x++) {
      n++;
      if (data[ym * w + x] > 0.3) on++;
    }
    if (h > ym && n > 0 && on / n > 0.5) found++;
  }
});
console.log(`det  lines found ${found}/${total}  (${((performance.now() - t2) / 1000).toFixed(1)} s)`);

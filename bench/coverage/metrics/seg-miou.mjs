// Mean IoU of a segmentation net against per-pixel labels (bench/coverage/data/scenes.masks.npy: one row of H*W
// class indices per sample). The first output is [C, H, W] logits per sample; the prediction is the arg-max over C.
// IoU is dataset-wide per class (intersections and unions summed over all samples), averaged over the classes that
// occur in the labels or the prediction, as in bench/coverage/scoring.py mean_iou.
export default {
  name: 'miou',
  higherIsBetter: true,
  needsLabels: true,
  score({ outputs, labels }) {
    const inter = new Map();
    const union = new Map();
    const add = (m, c) => m.set(c, (m.get(c) ?? 0) + 1);
    outputs.forEach((o, i) => {
      const { data, dims } = Object.values(o)[0];
      const [classes, ...rest] = dims;
      const pixels = rest.reduce((a, b) => a * b, 1);
      const truth = labels[i];
      if (!Array.isArray(truth) || truth.length !== pixels) {
        throw new Error(`sample ${i}: the label row has ${Array.isArray(truth) ? truth.length : 'no'} pixels, the output ${pixels}`);
      }
      for (let p = 0; p < pixels; p++) {
        let best = 0;
        for (let c = 1; c < classes; c++) if (data[c * pixels + p] > data[best * pixels + p]) best = c;
        const t = Number(truth[p]);
        if (best === t) { add(inter, t); add(union, t); } else { add(union, t); add(union, best); }
      }
    });
    let sum = 0;
    for (const [c, u] of union) sum += (inter.get(c) ?? 0) / u;
    return union.size ? sum / union.size : 1;
  },
};

// Top-1 detection accuracy for single-object images: the highest-scoring detection must have the true label and an
// IoU of at least 0.5 with the true box. Outputs by name: boxes [K, 4] (x1, y1, x2, y2 in pixels), scores [K],
// labels [K] (K may be 0: nothing detected). Labels (bench/coverage/data/shapes.boxes.json): { box, label } per
// sample. As bench/coverage/scoring.py top1_detection.
const IOU = 0.5;

function iou(a, b) {
  const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = w * h;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
}

export default {
  name: 'det-top1',
  higherIsBetter: true,
  needsLabels: true,
  score({ outputs, labels }) {
    let hits = 0;
    outputs.forEach((o, i) => {
      for (const name of ['boxes', 'scores', 'labels']) {
        if (!o[name]) throw new Error(`the model has no output named '${name}' (outputs: ${Object.keys(o).join(', ')})`);
      }
      const scores = o.scores.data;
      if (scores.length === 0) return;
      let k = 0;
      for (let j = 1; j < scores.length; j++) if (scores[j] > scores[k]) k = j;
      const box = Array.from(o.boxes.data.slice(4 * k, 4 * k + 4), Number);
      const truth = labels[i];
      if (Number(o.labels.data[k]) === truth.label && iou(box, truth.box) >= IOU) hits++;
    });
    return hits / outputs.length;
  },
};

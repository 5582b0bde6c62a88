/**
 * Writes the layer shapes of the PP-OCR models as trtmix discovers them (bench/latency-fit/ppocr-layers.json), so
 * that the device sweep (bench/latency-sweep.py) times exactly the layers the roofline prices.
 *   node --import tsx bench/latency-fit-shapes.ts
 */
import { writeFileSync } from 'node:fs';
import { loadModel } from '../src/onnx/model.ts';
import { upgradeOpset } from '../src/onnx/opset.ts';
import { discoverLayers } from '../src/onnx/layers.ts';
import { PPOCR_MODELS } from '../src/examples.ts';
import { layerShapeOf } from '../src/latency/layer-shape.ts';

const out: Record<string, unknown> = {};
for (const ex of Object.values(PPOCR_MODELS)) {
  const model = upgradeOpset(loadModel(ex.path));
  const { layers } = await discoverLayers(model, { inputShapes: { x: ex.inputShape } });
  out[`ppocr-${ex.id}`] = { input: ex.inputShape.slice(1), layers: layers.map((l) => ({ name: l.name, ...layerShapeOf(l) })) };
  console.log(`ppocr-${ex.id}: ${layers.length} layers`);
}
const path = new URL('./latency-fit/ppocr-layers.json', import.meta.url);
writeFileSync(path, `${JSON.stringify(out)}\n`);
console.log(`wrote ${path.pathname}`);

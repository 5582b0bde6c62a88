/**
 * The small-ViT question: is all-INT8 really slower than all-FP16 (and FP32)?
 *   node --import tsx bench/latency-vit.ts
 * Prices ViT-Tiny/16 (timm vit_tiny_patch16_224 exported on the device by bench/latency-sweep.py, weights constant,
 * bench/latency-fit/vit-tiny.onnx.gz) in all-FP32 / FP16 / INT8 on a T4 and an H200 at batch 1 and 32, with the
 * hand-set and the fitted efficiencies, and shows what the LayerNormalizations' precision changes would cost as
 * kernels of their own (the roofline before this bench priced them so).
 */
import { gunzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { decodeModel } from '../src/onnx/model.ts';
import { upgradeOpset } from '../src/onnx/opset.ts';
import { discoverLayers } from '../src/onnx/layers.ts';
import { buildLatencyGraph } from '../src/latency/onnx-graph.ts';
import { planKernels } from '../src/latency/graph.ts';
import { priceKernels } from '../src/latency/roofline.ts';
import { loadDeviceProfile } from '../src/latency/device-profile.ts';
import { BYTES, DATASHEET_EFFICIENCY, MEMORY_EFFICIENCY, fittedEfficiency } from '../src/latency/efficiency.ts';
import { uniformPolicy } from '../src/policy.ts';

const bytes = gunzipSync(readFileSync(new URL('./latency-fit/vit-tiny.onnx.gz', import.meta.url)));
const model = upgradeOpset(decodeModel(bytes));
const { graph, layers, inputShapes } = await discoverLayers(model, { inputShapes: { x: [1, 3, 224, 224] } });
const plan = planKernels(await buildLatencyGraph(model, graph, layers, inputShapes));
const names = layers.map((l) => l.name);
const floatOnly = plan.kernels.filter((k) => k.floatOnly);
console.log(`ViT-Tiny/16: ${layers.length} layers, ${plan.kernels.length} engine kernels, ${floatOnly.length} LayerNormalizations (no int8 kernel: they run fp16)\n`);
console.log('device batch efficiencies   all-FP32   all-FP16   all-INT8   (+ LayerNorm conversions as kernels of their own)');
for (const id of ['t4', 'h200']) {
  const d = loadDeviceProfile(id);
  for (const batch of [1, 32]) {
    // What separate int8 -> fp16 and fp16 -> int8 kernels around every LayerNormalization would add.
    const conversionMs = floatOnly.reduce((s, k) => {
      const elems = (plan.tensorElems.get(k.reads[0]) ?? 0) * batch;
      return s + 2 * ((elems * (BYTES.int8 + BYTES.fp16)) / (d.memoryBytesPerS * MEMORY_EFFICIENCY) + d.launchOverheadS) * 1e3;
    }, 0);
    for (const [label, eff] of [['hand-set', DATASHEET_EFFICIENCY], ['fitted', fittedEfficiency()]] as const) {
      const total = (p: 'fp32' | 'fp16' | 'int8') => {
        const r = priceKernels(plan, d, uniformPolicy(names, p), batch, eff);
        return [...r.kernels, ...r.reformats].reduce((s, k) => s + k.seconds, 0) * 1e3;
      };
      const [fp32, fp16, int8] = [total('fp32'), total('fp16'), total('int8')];
      console.log(`${id.padEnd(6)} ${String(batch).padStart(5)} ${label.padEnd(12)} ${fp32.toFixed(3).padStart(8)}   ${fp16.toFixed(3).padStart(8)}   ${int8.toFixed(3).padStart(8)}   (${(int8 + conversionMs).toFixed(3)})`);
    }
  }
}

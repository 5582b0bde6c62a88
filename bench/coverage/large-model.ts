/**
 * A large model as PyTorch 2.11 exports it, rebuilt here: bench/coverage/large/<name>/model.onnx.gz is the graph the
 * device machine exported (torch.onnx.export, dynamo=True, weights in model.onnx.data) and external.json lists its
 * external tensors (name, dtype, dims, offset, length, and the mean / std of the exported random-init values).
 * The hundreds of MB of weights cannot come back from the device machine, so this writes a model.onnx.data of the
 * same layout with seeded random values of the same mean and std (small and integer tensors exactly as exported),
 * and random inputs in the model's dtypes. Random weights are fine for what it is for: peak memory of analyze and
 * search on a model of this size, which bench/peak-memory.ts measures on the files this writes.
 *
 *   node --import tsx bench/coverage/large-model.ts [--model vit_b_16|bert_base] [--out bench/out/large]
 *     [--samples 16] [--seed 0]
 *   node --import tsx bench/peak-memory.ts --model bench/out/large/vit_b_16/model.onnx \
 *     --data bench/out/large/vit_b_16/inputs.npz --dir bench/out/large/vit_b_16/peak-memory
 */
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import seedrandom from 'seedrandom';
import { writeNpz } from '../../src/data/npz.ts';

const ROOT = join(import.meta.dirname, '..', '..');

interface ExternalTensor {
  name: string;
  dtype: string;
  dims: number[];
  location: string;
  offset: number;
  length: number;
  mean?: number;
  std?: number;
  values_b64?: string;
}
interface Manifest {
  name: string;
  params: number;
  external_data_bytes: number;
  inputs: { name: string; dtype: string; dims: (number | string)[] }[];
  tensors: ExternalTensor[];
}

const { values: args } = parseArgs({ options: {
  model: { type: 'string', default: 'vit_b_16' },
  out: { type: 'string', default: 'bench/out/large' },
  samples: { type: 'string', default: '16' },
  seed: { type: 'string', default: '0' },
} });

/** Normal(mean, std) float32 values, `count` of them, from a seeded generator (Box-Muller). */
export function normalFloats(count: number, mean: number, std: number, rng: () => number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i += 2) {
    const u = 1 - rng();
    const v = rng();
    const r = Math.sqrt(-2 * Math.log(u));
    out[i] = mean + std * r * Math.cos(2 * Math.PI * v);
    if (i + 1 < count) out[i + 1] = mean + std * r * Math.sin(2 * Math.PI * v);
  }
  return out;
}

/** Writes every external tensor at its offset; large tensors in chunks so memory stays at a few MB. */
function writeExternalData(manifest: Manifest, path: string, rng: () => number): number {
  const fd = openSync(path, 'w');
  let end = 0;
  try {
    for (const t of manifest.tensors) {
      end = Math.max(end, t.offset + t.length);
      if (t.values_b64) {
        writeSync(fd, Buffer.from(t.values_b64, 'base64'), 0, t.length, t.offset);
        continue;
      }
      if (t.dtype !== 'float32') throw new Error(`${t.name}: ${t.dtype} tensor of ${t.length} bytes without its values in external.json`);
      const chunk = 1 << 20;
      for (let done = 0; done < t.length / 4; done += chunk) {
        const n = Math.min(chunk, t.length / 4 - done);
        const values = normalFloats(n, t.mean ?? 0, t.std ?? 0, rng);
        writeSync(fd, new Uint8Array(values.buffer), 0, 4 * n, t.offset + 4 * done);
      }
    }
    ftruncateSync(fd, end);
  } finally {
    closeSync(fd);
  }
  return end;
}

/** Random inputs of the model's dtypes: images ~ N(0, 1), token ids in [0, 1000), attention masks all ones. */
function writeInputs(manifest: Manifest, path: string, samples: number, rng: () => number): string[] {
  const arrays: Record<string, { dtype: 'float32' | 'int64'; shape: number[]; data: Float32Array | BigInt64Array }> = {};
  const shapes: string[] = [];
  for (const input of manifest.inputs) {
    const dims = input.dims.map((d, i) => (i === 0 ? samples : typeof d === 'number' ? d : 32));
    const count = dims.reduce((a, b) => a * b, 1);
    if (input.dtype === 'float32') {
      arrays[input.name] = { dtype: 'float32', shape: dims, data: normalFloats(count, 0, 1, rng) };
    } else if (input.dtype === 'int64') {
      const mask = /mask/i.test(input.name);
      const data = BigInt64Array.from({ length: count }, () => BigInt(mask ? 1 : Math.floor(rng() * 1000)));
      arrays[input.name] = { dtype: 'int64', shape: dims, data };
    } else {
      throw new Error(`input ${input.name}: dtype ${input.dtype} not generated here`);
    }
    shapes.push(`${input.name}:${[1, ...dims.slice(1)].join('x')}`);
  }
  writeNpz(path, arrays);
  return shapes;
}

const source = join(ROOT, 'bench', 'coverage', 'large', args.model!);
if (!existsSync(join(source, 'external.json'))) throw new Error(`${source}/external.json does not exist; export it with bench/coverage/export_models.py`);
const manifest: Manifest = JSON.parse(readFileSync(join(source, 'external.json'), 'utf8'));
const dir = join(args.out!, args.model!);
mkdirSync(dir, { recursive: true });
const rng = seedrandom(`large-model:${args.seed}`);
const modelPath = join(dir, 'model.onnx');
writeFileSync(modelPath, gunzipSync(readFileSync(join(source, 'model.onnx.gz'))));
const t0 = performance.now();
const bytes = writeExternalData(manifest, join(dir, manifest.tensors[0]?.location ?? 'model.onnx.data'), rng);
console.log(`${modelPath}: ${manifest.params.toLocaleString('en')} parameters; ${(bytes / 2 ** 20).toFixed(1)} MiB of external data in ${manifest.tensors.length} tensors written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
const dataPath = join(dir, 'inputs.npz');
const shapes = writeInputs(manifest, dataPath, Number(args.samples), rng);
console.log(`${dataPath}: ${args.samples} random samples (${shapes.join(', ')})`);
console.log(`measure it: node --import tsx bench/peak-memory.ts --model ${modelPath} --data ${dataPath} --dir ${join(dir, 'peak-memory')}`);

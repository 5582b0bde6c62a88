/**
 * GPU device profiles for the roofline latency model: one JSON file per device in ./profiles/, every peak
 * number next to its public source (datasheet, architecture whitepaper, or "Derived"/"Assumption" with the
 * derivation). Tensor-core numbers are dense: datasheets that quote "with sparsity" are halved. The roofline scales
 * these peaks by efficiency terms fitted on an H200 (efficiency.ts, efficiency-fit.json), the same for every GPU:
 * only the H200 / H100 are measured; refit on yours with bench/latency-sweep.py and bench/latency-fit.ts.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.ts';

/** A number with where it comes from. */
export interface SourcedNumber {
  value: number;
  source: string;
  note?: string;
}

/** The profile file as stored. */
export interface DeviceProfileFile {
  id: string;
  name: string;
  architecture: string;
  int8Tops: SourcedNumber;
  fp16Tflops: SourcedNumber;
  fp32Tflops: SourcedNumber;
  fp16VectorTflops: SourcedNumber;
  memoryGBs: SourcedNumber;
  sms: SourcedNumber;
  launchOverheadUs: SourcedNumber;
}

/** The numbers the roofline model computes with (units: ops/s, bytes/s, seconds). */
export interface DeviceProfile {
  id: string;
  name: string;
  /** Dense tensor-core INT8 ops/s. */
  int8OpsPerS: number;
  /** Dense tensor-core FP16 FLOP/s. */
  fp16FlopsPerS: number;
  /** FP32 FLOP/s on CUDA cores (strict FP32: TensorRT built without TF32). */
  fp32FlopsPerS: number;
  /** FP16 FLOP/s on CUDA cores (packed half2), for layers tensor cores cannot run (depthwise). */
  fp16VectorFlopsPerS: number;
  memoryBytesPerS: number;
  sms: number;
  launchOverheadS: number;
}

const NUMBER_FIELDS = ['int8Tops', 'fp16Tflops', 'fp32Tflops', 'fp16VectorTflops', 'memoryGBs', 'sms', 'launchOverheadUs'] as const;

const profilesDir = fileURLToPath(new URL('./profiles/', import.meta.url));

/** Ids of the bundled GPU profiles, sorted. */
export function deviceIds(): string[] {
  return readdirSync(profilesDir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}

/** Checks a parsed profile file: every number positive and sourced. Throws an Error naming the bad field. */
export function parseDeviceProfile(raw: unknown, origin: string): DeviceProfileFile {
  const file = raw as Partial<DeviceProfileFile>;
  if (!file || typeof file !== 'object' || typeof file.id !== 'string' || typeof file.name !== 'string') {
    throw new Error(`${origin}: a device profile needs string fields "id" and "name"`);
  }
  for (const field of NUMBER_FIELDS) {
    const n = file[field] as SourcedNumber | undefined;
    if (!n || typeof n.value !== 'number' || !(n.value > 0) || typeof n.source !== 'string' || n.source.length === 0) {
      throw new Error(`${origin}: field "${field}" must be { "value": <positive number>, "source": "<where it comes from>" }`);
    }
  }
  return file as DeviceProfileFile;
}

export function toDeviceProfile(file: DeviceProfileFile): DeviceProfile {
  return {
    id: file.id,
    name: file.name,
    int8OpsPerS: file.int8Tops.value * 1e12,
    fp16FlopsPerS: file.fp16Tflops.value * 1e12,
    fp32FlopsPerS: file.fp32Tflops.value * 1e12,
    fp16VectorFlopsPerS: file.fp16VectorTflops.value * 1e12,
    memoryBytesPerS: file.memoryGBs.value * 1e9,
    sms: file.sms.value,
    launchOverheadS: file.launchOverheadUs.value * 1e-6,
  };
}

const cache = new Map<string, DeviceProfileFile>();

/** The bundled profile file for a device id; UserError listing the known ids when there is none. */
export function loadDeviceProfileFile(id: string): DeviceProfileFile {
  const hit = cache.get(id);
  if (hit) return hit;
  const ids = deviceIds();
  if (!ids.includes(id)) throw new UserError(`unknown GPU device "${id}"; known devices: ${ids.join(', ')}`);
  const path = `${profilesDir}${id}.json`;
  const file = parseDeviceProfile(JSON.parse(readFileSync(path, 'utf8')), path);
  cache.set(id, file);
  return file;
}

export function loadDeviceProfile(id: string): DeviceProfile {
  return toDeviceProfile(loadDeviceProfileFile(id));
}

/**
 * calibration.cache for implicit INT8 in TensorRT 8.x–10.x (trtexec --calib, a calibrator's
 * readCalibrationCache, Polygraphy --calibration-cache). TensorRT 10.1 deprecated calibrators and 11 removed them.
 *
 * Format: `TRT-<NV_TENSORRT_VERSION>-EntropyCalibration2`, then one `<ONNX tensor name>: <hex>` line per tensor,
 * where hex is the IEEE-754 float32 bit pattern of the scale amax / 127, most significant digit first
 * (1.0 -> 3f800000). TensorRT names network tensors after ONNX tensors, so the names line up.
 */
import { UserError } from '../errors.ts';

/** NV_TENSORRT_VERSION of a release: major*1000 + minor*100 + patch up to 8.x, major*10000 + ... from 10.0. */
export function trtVersionCode(version: string): number {
  const text = version.trim();
  if (/^(\d{4}|\d{6})$/.test(text)) return trtVersionCode(decodeVersionCode(Number(text)));
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?(?:\.\d+)*$/.exec(text);
  if (!m) throw new UserError(`--trt-version ${version} is not a TensorRT version; write it like 8.6.1 or 10.3.0`);
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
  if (major >= 11) {
    throw new UserError(`TensorRT ${text} has no INT8 calibrators (removed in 11.0); build from the explicitly quantized model instead (--format qdq-onnx)`);
  }
  if (major < 8) throw new UserError(`TensorRT ${text} predates per-layer precision constraints; trtmix exports for TensorRT 8.4 to 10.x`);
  if (minor > 99 || patch > 99 || (major < 10 && minor > 9)) throw new UserError(`--trt-version ${version} has an out-of-range minor or patch number`);
  return major >= 10 ? major * 10000 + minor * 100 + patch : major * 1000 + minor * 100 + patch;
}

function decodeVersionCode(code: number): string {
  if (code >= 100000) return `${Math.floor(code / 10000)}.${Math.floor(code / 100) % 100}.${code % 100}`;
  return `${Math.floor(code / 1000)}.${Math.floor(code / 100) % 10}.${code % 100}`;
}

/** The cache's hex for one tensor: float32 bits of amax / 127, big-endian. */
export function scaleHex(amax: number): string {
  const bytes = Buffer.alloc(4);
  bytes.writeFloatBE(amax / 127, 0);
  return bytes.toString('hex');
}

/** The float32 scale a cache line stands for (the inverse of scaleHex). */
export function hexScale(hex: string): number {
  if (!/^[0-9a-f]{8}$/.test(hex)) throw new Error(`not 8 hex digits: ${hex}`);
  return Buffer.from(hex, 'hex').readFloatBE(0);
}

export function calibrationCache(amax: ReadonlyMap<string, number>, versionCode: number): string {
  const lines = [`TRT-${versionCode}-EntropyCalibration2`];
  for (const [tensor, value] of amax) {
    if (/[\r\n]/.test(tensor)) throw new UserError(`tensor name ${JSON.stringify(tensor)} contains a line break, which a calibration cache cannot hold; use build_engine.py`);
    if (!Number.isFinite(value) || value <= 0) throw new UserError(`tensor ${tensor} has amax ${value}; a calibration scale needs a positive finite amax`);
    lines.push(`${tensor}: ${scaleHex(value)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Reads a calibration cache back: header version and tensor -> scale. */
export function parseCalibrationCache(text: string): { versionCode: number; algorithm: string; scales: Map<string, number> } {
  const lines = text.split('\n').filter((l) => l.length > 0);
  const header = /^TRT-(\d+)-(\w+)$/.exec(lines[0] ?? '');
  if (!header) throw new Error(`not a TensorRT calibration cache header: ${lines[0]}`);
  const scales = new Map<string, number>();
  for (const line of lines.slice(1)) {
    const at = line.lastIndexOf(': ');
    scales.set(line.slice(0, at), hexScale(line.slice(at + 2)));
  }
  return { versionCode: Number(header[1]), algorithm: header[2], scales };
}

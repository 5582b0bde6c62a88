/**
 * Measured latency without hand work: the trtexec builds whose profiles make a `profile:DIR` folder.
 *
 * TensorRT <= 10 (weakly typed): the ONNX model with precision flags: `--fp16` (all-FP16), `--fp16 --int8`
 * (all-INT8; no calibration cache: trtexec then uses placeholder scales, which do not change timing), and the
 * policy's own command (its layerPrecisions / layerOutputTypes and calibration cache).
 * TensorRT 11 has no precision flags, calibrators or per-layer precisions: it builds strongly typed from explicitly
 * quantized models, which trtmix writes with its Q/DQ export (src/export/qdq-onnx.ts): all-FP16 from the model with
 * every layer cast to float16 (fp16.onnx), all-INT8 from the model with Q/DQ on every layer (int8.qdq.onnx,
 * placeholder scales), the policy from its model.qdq.onnx (its calibrated scales).
 * Every build exports `--exportProfile --exportLayerInfo --profilingVerbosity=detailed --separateProfileRun` to
 * DIR/<build>.profile.json and DIR/<build>.layers.json, and its log to DIR/<build>.log.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { UserError } from '../errors.ts';

export type TrtGeneration = 10 | 11;

/** One trtexec run. */
export interface ProfileBuild {
  /** File stem in DIR: fp16, int8 or policy (readProfileDir takes the precision from the name). */
  name: 'fp16' | 'int8' | 'policy';
  /** trtexec arguments (without the executable). */
  args: string[];
  /** For TensorRT 11: the model this build reads, written by the caller before the run. */
  onnx: string;
}

/** `TensorRT v100300` in trtexec's banner -> 10 (codes below 10000 are 8.x style: v8601). */
export function trtVersionFromBanner(text: string): { code: number; major: number; version: string } | undefined {
  const m = /TensorRT v(\d{4,6})/.exec(text);
  if (!m) return undefined;
  const code = Number(m[1]);
  const major = code >= 10000 ? Math.floor(code / 10000) : Math.floor(code / 1000);
  const rest = code >= 10000 ? code % 10000 : code % 1000;
  return { code, major, version: `${major}.${Math.floor(rest / 100)}.${rest % 100}` };
}

/** The generation whose build recipe applies: 11 and later build from Q/DQ models, earlier ones take flags. */
export function generationOf(major: number): TrtGeneration {
  return major >= 11 ? 11 : 10;
}

/** The flags every build shares: profiles, layer info, and the shapes of dynamic inputs. */
export function profilingArgs(dir: string, name: string, shapes: Record<string, number[]> | undefined): string[] {
  const args = [
    `--exportProfile=${join(dir, `${name}.profile.json`)}`,
    `--exportLayerInfo=${join(dir, `${name}.layers.json`)}`,
    '--profilingVerbosity=detailed',
    '--separateProfileRun',
  ];
  const list = Object.entries(shapes ?? {}).map(([n, dims]) => `${n.includes(':') ? `'${n}'` : n}:${dims.join('x')}`);
  if (list.length > 0) args.push(`--shapes=${list.join(',')}`);
  return args;
}

export interface BuildPlanInputs {
  generation: TrtGeneration;
  dir: string;
  /** The user's ONNX model (TensorRT <= 10 builds read it). */
  model: string;
  shapes?: Record<string, number[]>;
  /** TensorRT <= 10: the policy's trtexec arguments (without the executable), from the trtexec export. */
  policyArgs?: string[];
  /** Whether a policy build is wanted (TensorRT 11 reads DIR/policy.qdq.onnx). */
  policy: boolean;
}

/** The trtexec runs for a profile folder, in order. */
export function planProfileBuilds(p: BuildPlanInputs): ProfileBuild[] {
  const builds: ProfileBuild[] = [];
  const add = (name: ProfileBuild['name'], onnx: string, precisionArgs: string[]) =>
    builds.push({ name, onnx, args: [`--onnx=${onnx}`, ...precisionArgs, ...profilingArgs(p.dir, name, p.shapes)] });
  if (p.generation === 10) {
    add('fp16', p.model, ['--fp16']);
    add('int8', p.model, ['--fp16', '--int8']);
    if (p.policy) {
      // The export's command minus its --onnx (same model) and --shapes (added above) and any --saveEngine.
      const own = (p.policyArgs ?? []).filter((a) => !/^--(onnx|shapes|saveEngine)=/.test(a));
      add('policy', p.model, own);
    }
  } else {
    add('fp16', join(p.dir, 'fp16.onnx'), []);
    add('int8', join(p.dir, 'int8.qdq.onnx'), []);
    if (p.policy) add('policy', join(p.dir, 'policy.qdq.onnx'), []);
  }
  return builds;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** trtexec from --trtexec, else the first on PATH; UserError saying how to point at one otherwise. */
export function findTrtexec(explicit: string | undefined, path = process.env.PATH ?? ''): string {
  if (explicit !== undefined) {
    const p = isAbsolute(explicit) || explicit.includes('/') ? resolve(explicit) : explicit;
    if (!existsSync(p)) throw new UserError(`--trtexec ${explicit} does not exist; pass the path of TensorRT's trtexec (e.g. /usr/src/tensorrt/bin/trtexec)`);
    if (!isExecutable(p)) throw new UserError(`--trtexec ${explicit} is not an executable file`);
    return p;
  }
  for (const dir of path.split(delimiter).filter(Boolean)) {
    const candidate = join(dir, 'trtexec');
    if (isExecutable(candidate)) return candidate;
  }
  throw new UserError('trtexec was not found on PATH; install TensorRT (trtexec ships in its bin/ folder, e.g. /usr/src/tensorrt/bin) or pass --trtexec PATH');
}

/** The TensorRT release of a trtexec, from the banner its --help prints. */
export function detectTrtVersion(trtexec: string): { code: number; major: number; version: string } {
  const r = spawnSync(trtexec, ['--help'], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw new UserError(`could not run ${trtexec} --help (${r.error.message}); check the trtexec path`);
  const found = trtVersionFromBanner(`${r.stdout}\n${r.stderr}`);
  if (!found) throw new UserError(`${trtexec} --help printed no "TensorRT vNNNN" banner; say which TensorRT it is with --trt-version 10 or --trt-version 11`);
  return found;
}

/** Median GPU compute time of the timed run, from trtexec's performance summary (ms), if it printed one. */
export function gpuComputeMedianMs(log: string): number | undefined {
  const m = /GPU Compute Time:[^\n]*?median = ([0-9.eE+-]+) ms/.exec(log);
  return m ? Number(m[1]) : undefined;
}

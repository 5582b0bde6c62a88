/**
 * trtexec.txt: one labelled, complete command per TensorRT generation for a precision plan.
 *   TensorRT 11          trtexec --onnx=model.qdq.onnx --saveEngine=...   (explicit quantization is the only form and
 *                        every network strongly typed: none of --fp16 --int8 --best --calib --layerPrecisions
 *                        --layerOutputTypes --precisionConstraints --stronglyTyped, which 11 removed)
 *   TensorRT 10.x        the same model with --stronglyTyped
 *   TensorRT 8.4 - 10.x  implicit quantization on the original model: --fp16 --int8, per-layer precisions and
 *                        output types, --precisionConstraints=obey, --calib=calibration.cache
 *
 * The implicit form:
 * trtexec's grammar (samples/common/sampleOptions.cpp): one `--layerPrecisions=` and one `--layerOutputTypes=`
 * value, split on ',' into `name:type` items, each split at its LAST ':' (so ':' inside a name is fine), then every
 * `'` is removed from the name. Nothing escapes ',' or `'`, so a name containing either cannot be written; such
 * plans are refused with a pointer to build_engine.py / polygraphy.txt. Names with ':' are written `'name':type`
 * so that the name/type boundary is visible to the reader; trtexec parses both spellings the same.
 * TensorRT 10 trtexec also accepts one `*` wildcard per name (matchStringWithOneWildcard); 8.x only knows `*` alone.
 */
import type { PlanEntry, PrecisionPlan, TrtType } from './plan.ts';
import { shellQuote } from './shell.ts';
import { UserError } from '../errors.ts';

export interface TrtexecOptions {
  /** Path of the ONNX model as the user will run trtexec (written as given). */
  modelPath: string;
  /** Path of model.qdq.onnx for the explicit-quantization commands (default model.qdq.onnx). */
  qdqPath?: string;
  /** Calibration cache path; written as --calib when any layer reads int8. */
  calibPath?: string;
  /** Engine to save (--saveEngine); default: none. */
  enginePath?: string;
  /** Write `name*` (or `name,name_*`) so the extra layers the parser makes for one node (`name_<N>`) match too. */
  wildcard?: boolean;
  /** Shapes of the inputs with dynamic dims (--shapes); trtexec would otherwise set every dynamic dim to 1. */
  shapes?: Record<string, number[]>;
  /** Files for the commented verification line (--exportLayerInfo / --exportProfile). */
  layerInfoPath?: string;
  profilePath?: string;
}

export interface TrtexecCommand {
  /** The labelled commands and a commented verification line, newline-terminated. */
  text: string;
  /** TensorRT 11: the argument vector (no shell quoting), for tests and callers that exec it. */
  explicit: string[];
  /** TensorRT 10.x explicit quantization (strongly typed). */
  stronglyTyped: string[];
  /** TensorRT 8.4 - 10.x implicit quantization; undefined where a layer name cannot be written for trtexec. */
  implicit?: string[];
  warnings: string[];
}

/** The flags TensorRT 11's trtexec no longer takes: the TensorRT 11 command must name none of them. */
export const REMOVED_IN_TRT11 = ['--fp16', '--int8', '--best', '--calib', '--layerPrecisions', '--layerOutputTypes', '--precisionConstraints', '--stronglyTyped'];

export const TRT_GENERATION_LABELS = {
  trt11: 'TensorRT 11: explicit quantization, the only form; every network is strongly typed and model.qdq.onnx decides every precision',
  trt10: 'TensorRT 10.x, explicit quantization: the same model, strongly typed',
  implicit: 'TensorRT 8.4 - 10.x, implicit quantization: per-layer precision flags and the INT8 calibration cache (10.1 deprecated calibrators, 10.12 per-layer precisions)',
} as const;

const UNWRITABLE = /[,'\u0000-\u001f\u007f]/;

function assertWritable(name: string): void {
  const bad = UNWRITABLE.exec(name);
  if (!bad) return;
  const what = bad[0] === ',' ? "','" : bad[0] === "'" ? "a single quote" : 'a control character';
  throw new UserError(
    `layer name ${JSON.stringify(name)} contains ${what}, which trtexec's --layerPrecisions/--layerOutputTypes grammar cannot express; build with build_engine.py (--format trt-python) or polygraphy.txt (--format polygraphy) instead`,
  );
}

function writeName(name: string): string {
  return name.includes(':') ? `'${name}'` : name;
}

/**
 * The patterns that cover one node's layers without reaching another node's: `name*` where no other layer name
 * starts with `name` (nor could one of another node's `_<N>` layers), else `name` plus `name_*`, else `name` alone.
 */
export function wildcardPatterns(name: string, networkLayerNames: readonly string[], warnings: string[]): string[] {
  if (name.includes('*')) return [name];
  const others = networkLayerNames.filter((o) => o !== name);
  if (!others.some((o) => o.startsWith(name) || name.startsWith(`${o}_`))) return [`${name}*`];
  if (!others.some((o) => o.startsWith(`${name}_`))) return [name, `${name}_*`];
  warnings.push(`no wildcard covers ${name} without also matching ${others.find((o) => o.startsWith(`${name}_`))}; it is written without one`);
  return [name];
}

function pairs(entries: PlanEntry[], pick: (e: PlanEntry) => TrtType | undefined, plan: PrecisionPlan, wildcard: boolean, warnings: string[]): string {
  const items: string[] = [];
  for (const e of entries) {
    const type = pick(e);
    if (!type) continue;
    const names = wildcard ? wildcardPatterns(e.name, plan.networkLayerNames, warnings) : [e.name];
    for (const n of names) items.push(`${writeName(n)}:${type}`);
  }
  return items.join(',');
}

/** The implicit-quantization command; throws a UserError where a layer name cannot be written. */
function implicitArgv(plan: PrecisionPlan, opts: TrtexecOptions, shapes: string[], warnings: string[]): string[] {
  for (const e of plan.entries) assertWritable(e.name);
  const starred = plan.entries.filter((e) => e.name.includes('*'));
  if (starred.length > 0) {
    warnings.push(`layer name(s) ${starred.slice(0, 3).map((e) => e.name).join(', ')} contain '*', which TensorRT 10 trtexec reads as a wildcard; other layers matching it may get the same precision`);
  }
  const wildcardWarnings: string[] = [];
  const precisions = pairs(plan.entries, (e) => e.precision, plan, !!opts.wildcard, wildcardWarnings);
  const outputTypes = pairs(plan.entries, (e) => e.outputType, plan, !!opts.wildcard, []);
  warnings.push(...wildcardWarnings);

  const types = new Set(plan.entries.flatMap((e) => [e.precision, e.outputType]));
  const argv = ['trtexec', `--onnx=${opts.modelPath}`];
  // --fp16 always: layers the policy does not constrain (softmax, norms, resize) may then run in FP16, as the
  // placement runs them; --int8 only with int8 layers, since it needs the calibration cache.
  argv.push('--fp16');
  if (types.has('int8')) argv.push('--int8');
  argv.push('--precisionConstraints=obey');
  if (precisions) argv.push(`--layerPrecisions=${precisions}`);
  if (outputTypes) argv.push(`--layerOutputTypes=${outputTypes}`);
  if (types.has('int8')) argv.push(`--calib=${opts.calibPath ?? 'calibration.cache'}`);
  if (shapes.length > 0) argv.push(`--shapes=${shapes.join(',')}`);
  if (opts.enginePath) argv.push(`--saveEngine=${opts.enginePath}`);
  return argv;
}

export function trtexecCommand(plan: PrecisionPlan, opts: TrtexecOptions): TrtexecCommand {
  const warnings: string[] = [];
  // One shape per input builds a profile with min = opt = max; names with ':' are quoted as trtexec reads them.
  const shapes = Object.entries(opts.shapes ?? {}).map(([name, dims]) => `${name.includes(':') ? `'${name}'` : name}:${dims.join('x')}`);
  const tail = [...(shapes.length > 0 ? [`--shapes=${shapes.join(',')}`] : []), ...(opts.enginePath ? [`--saveEngine=${opts.enginePath}`] : [])];
  const qdq = opts.qdqPath ?? 'model.qdq.onnx';
  const explicit = ['trtexec', `--onnx=${qdq}`, ...tail];
  const stronglyTyped = ['trtexec', `--onnx=${qdq}`, '--stronglyTyped', ...tail];
  let implicit: string[] | undefined;
  let unwritable: string | undefined;
  try {
    implicit = implicitArgv(plan, opts, shapes, warnings);
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    unwritable = e.message;
    warnings.push(`trtexec.txt has no TensorRT 8.4-10.x implicit command: ${e.message}`);
  }
  const verify = [
    '--profilingVerbosity=detailed',
    `--exportLayerInfo=${opts.layerInfoPath ?? 'trt_layer_info.json'}`,
    `--exportProfile=${opts.profilePath ?? 'trt_profile.json'}`,
  ];
  const line = (argv: string[]) => argv.map(shellQuote).join(' ');
  const lines = [
    `# ${TRT_GENERATION_LABELS.trt11}`, line(explicit),
    `# ${TRT_GENERATION_LABELS.trt10}`, line(stronglyTyped),
    `# ${TRT_GENERATION_LABELS.implicit}`, implicit ? line(implicit) : `# not expressible: ${unwritable}`,
    // Layer info names each engine layer's precision and the ONNX nodes fused into it; the profile is what
    // `trtmix latency --target profile:DIR` imports. The same flags work on the other two commands.
    '# What the builder made of it (add these flags to any of the commands above):',
    `# ${line(explicit)} ${verify.map(shellQuote).join(' ')}`,
  ];
  return { text: `${lines.join('\n')}\n`, explicit, stronglyTyped, ...(implicit ? { implicit } : {}), warnings };
}

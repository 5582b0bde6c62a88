/**
 * polygraphy.txt: a labelled `polygraphy convert` command per TensorRT generation for the plan, as trtexec.txt:
 * TensorRT 11 builds model.qdq.onnx with no precision flags (no --int8 / --fp16: the model's Q/DQ and types decide),
 * TensorRT 10.x the same with --strongly-typed, TensorRT 8.4 - 10.x the implicit form below.
 *
 * Polygraphy's CLI takes `--layer-precisions name:dtype` as separate arguments, split at the last ':'
 * (args_util.parse_arglist_to_tuple_list uses rpartition), so any layer name can be written; dtypes use
 * TensorRT's aliases (float32, float16, int8). Its `--tensor-datatypes` only reaches network input/output
 * tensors, so per-layer output types cannot be set from the command line: the second command hands Polygraphy
 * build_engine.py as a network script (its load_network() sets precisions, output types and ranges).
 */
import type { PrecisionPlan, TrtType } from './plan.ts';
import { shellQuote } from './shell.ts';
import { TRT_GENERATION_LABELS } from './trtexec.ts';

const POLYGRAPHY_TYPE: Record<TrtType, string> = { fp32: 'float32', fp16: 'float16', int8: 'int8' };

export interface PolygraphyOptions {
  modelPath: string;
  /** model.qdq.onnx for the explicit-quantization commands (default model.qdq.onnx). */
  qdqPath?: string;
  calibPath?: string;
  enginePath?: string;
  /** build_engine.py, for the network-script variant. */
  scriptPath?: string;
  /** Shapes of the inputs with dynamic dims: a one-shape optimization profile (--trt-min/opt/max-shapes). */
  shapes?: Record<string, number[]>;
}

export interface PolygraphyCommand {
  text: string;
  /** TensorRT 11: argument vector of the explicit-quantization command. */
  explicit: string[];
  /** TensorRT 10.x explicit quantization (--strongly-typed). */
  stronglyTyped: string[];
  /** TensorRT 8.4 - 10.x: argument vector of the implicit (ONNX) command. */
  implicit: string[];
}

export function polygraphyCommand(plan: PrecisionPlan, opts: PolygraphyOptions): PolygraphyCommand {
  const types = new Set(plan.entries.flatMap((e) => [e.precision, e.outputType]));
  const shapes = Object.entries(opts.shapes ?? {}).map(([name, dims]) => `${name}:[${dims.join(',')}]`);
  const shapeFlags: string[] = [];
  if (shapes.length > 0) for (const which of ['min', 'opt', 'max']) shapeFlags.push(`--trt-${which}-shapes`, ...shapes);
  const engine = opts.enginePath ?? 'model.engine';
  const qdq = opts.qdqPath ?? 'model.qdq.onnx';
  const explicit = ['polygraphy', 'convert', qdq, ...shapeFlags, '-o', engine];
  const stronglyTyped = ['polygraphy', 'convert', qdq, '--strongly-typed', ...shapeFlags, '-o', engine];
  const flags: string[] = [];
  // FP16 always, as in trtexec.txt: unconstrained layers may run in FP16.
  flags.push('--fp16');
  if (types.has('int8')) flags.push('--int8');
  flags.push('--precision-constraints', 'obey');
  if (types.has('int8')) flags.push('--calibration-cache', opts.calibPath ?? 'calibration.cache');
  flags.push(...shapeFlags);
  const layerPrecisions = plan.entries.filter((e) => e.precision).map((e) => `${e.name}:${POLYGRAPHY_TYPE[e.precision!]}`);
  const implicit = ['polygraphy', 'convert', opts.modelPath, ...flags];
  if (layerPrecisions.length > 0) implicit.push('--layer-precisions', ...layerPrecisions);
  implicit.push('-o', engine);
  const script = ['polygraphy', 'convert', opts.scriptPath ?? 'build_engine.py', '--model-type', 'trt-network-script', ...flags, '-o', engine];
  const line = (argv: string[]) => argv.map(shellQuote).join(' ');
  const text = [
    `# ${TRT_GENERATION_LABELS.trt11}`, line(explicit),
    `# ${TRT_GENERATION_LABELS.trt10}`, line(stronglyTyped),
    `# ${TRT_GENERATION_LABELS.implicit}`, line(implicit),
    '# Polygraphy cannot set per-layer output types from its command line (--tensor-datatypes reaches network I/O only).',
    '# For the int8 / fp16 output types too, let it load the network from build_engine.py:',
    `# ${line(script)}`,
    '',
  ].join('\n');
  return { text, explicit, stronglyTyped, implicit };
}

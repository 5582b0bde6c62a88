/**
 * polygraphy.txt: a `polygraphy convert` command for the plan.
 *
 * Polygraphy's CLI takes `--layer-precisions name:dtype` as separate arguments, split at the last ':'
 * (args_util.parse_arglist_to_tuple_list uses rpartition), so any layer name can be written; dtypes use
 * TensorRT's aliases (float32, float16, int8). Its `--tensor-datatypes` only reaches network input/output
 * tensors, so per-layer output types cannot be set from the command line: the second command hands Polygraphy
 * build_engine.py as a network script (its load_network() sets precisions, output types and ranges).
 */
import type { PrecisionPlan, TrtType } from './plan.ts';
import { shellQuote } from './shell.ts';

const POLYGRAPHY_TYPE: Record<TrtType, string> = { fp32: 'float32', fp16: 'float16', int8: 'int8' };

export interface PolygraphyOptions {
  modelPath: string;
  calibPath?: string;
  enginePath?: string;
  /** build_engine.py, for the network-script variant. */
  scriptPath?: string;
  /** Shapes of the inputs with dynamic dims: a one-shape optimization profile (--trt-min/opt/max-shapes). */
  shapes?: Record<string, number[]>;
}

export interface PolygraphyCommand {
  text: string;
  /** Argument vector of the first (ONNX) command. */
  argv: string[];
}

export function polygraphyCommand(plan: PrecisionPlan, opts: PolygraphyOptions): PolygraphyCommand {
  const types = new Set(plan.entries.flatMap((e) => [e.precision, e.outputType]));
  const flags: string[] = [];
  // FP16 always, as in trtexec.txt: unconstrained layers may run in FP16.
  flags.push('--fp16');
  if (types.has('int8')) flags.push('--int8');
  flags.push('--precision-constraints', 'obey');
  if (types.has('int8')) flags.push('--calibration-cache', opts.calibPath ?? 'calibration.cache');
  const shapes = Object.entries(opts.shapes ?? {}).map(([name, dims]) => `${name}:[${dims.join(',')}]`);
  if (shapes.length > 0) for (const which of ['min', 'opt', 'max']) flags.push(`--trt-${which}-shapes`, ...shapes);
  const engine = opts.enginePath ?? 'model.engine';
  const layerPrecisions = plan.entries.filter((e) => e.precision).map((e) => `${e.name}:${POLYGRAPHY_TYPE[e.precision!]}`);
  const argv = ['polygraphy', 'convert', opts.modelPath, ...flags];
  if (layerPrecisions.length > 0) argv.push('--layer-precisions', ...layerPrecisions);
  argv.push('-o', engine);
  const script = ['polygraphy', 'convert', opts.scriptPath ?? 'build_engine.py', '--model-type', 'trt-network-script', ...flags, '-o', engine];
  const text = [
    argv.map(shellQuote).join(' '),
    '# Polygraphy cannot set per-layer output types from its command line (--tensor-datatypes reaches network I/O only).',
    '# For the int8 / fp16 output types too, let it load the network from build_engine.py:',
    `# ${script.map(shellQuote).join(' ')}`,
    '',
  ].join('\n');
  return { text, argv };
}

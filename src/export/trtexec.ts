/**
 * The trtexec command (TensorRT 8.4–10.x) for a precision plan.
 *
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
  /** The command line and its commented verification twin, newline-terminated. */
  text: string;
  /** The argument vector of the command (no shell quoting), for tests and callers that exec it. */
  argv: string[];
  warnings: string[];
}

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

export function trtexecCommand(plan: PrecisionPlan, opts: TrtexecOptions): TrtexecCommand {
  const warnings: string[] = [];
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
  // latency model prices them; --int8 only with int8 layers, since it needs the calibration cache.
  argv.push('--fp16');
  if (types.has('int8')) argv.push('--int8');
  argv.push('--precisionConstraints=obey');
  if (precisions) argv.push(`--layerPrecisions=${precisions}`);
  if (outputTypes) argv.push(`--layerOutputTypes=${outputTypes}`);
  if (types.has('int8')) argv.push(`--calib=${opts.calibPath ?? 'calibration.cache'}`);
  // One shape per input builds a profile with min = opt = max; names with ':' are quoted as trtexec reads them.
  const shapes = Object.entries(opts.shapes ?? {}).map(([name, dims]) => `${name.includes(':') ? `'${name}'` : name}:${dims.join('x')}`);
  if (shapes.length > 0) argv.push(`--shapes=${shapes.join(',')}`);
  if (opts.enginePath) argv.push(`--saveEngine=${opts.enginePath}`);
  const verify = [
    '--profilingVerbosity=detailed',
    `--exportLayerInfo=${opts.layerInfoPath ?? 'trt_layer_info.json'}`,
    `--exportProfile=${opts.profilePath ?? 'trt_profile.json'}`,
  ];
  const line = argv.map(shellQuote).join(' ');
  // The second line checks what the builder did: layer info names each engine layer's precision and the ONNX
  // nodes fused into it; the profile is what `trtmix latency --target profile:DIR` imports.
  const text = `${line}\n# ${line} ${verify.map(shellQuote).join(' ')}\n`;
  return { text, argv, warnings };
}

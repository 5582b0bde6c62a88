/** Command-line options of `trtmix search` and `trtmix compare`, and their parsing. */
import type { Argv } from 'yargs';
import { UserError } from '../errors.ts';
import { withExperimentOptions, type ExperimentArgs } from '../cli/experiment.ts';
import type { CalibrationChoice } from '../policy.ts';
import { choiceLabel, parseChoiceLabel } from '../quant/calibrate.ts';
import type { ActionOption } from '../../envs/types.ts';

export const DEFAULT_EPISODES = 300;
export const DEFAULT_TIME_LIMIT = '15m';
/** Most steps of the ladder in pareto/: enough to switch in small moves, few enough to keep on disk. */
export const DEFAULT_LADDER_STEPS = 8;

export interface SearchArgs extends ExperimentArgs {
  target?: string;
  'budget-ms'?: number;
  budget?: number;
  'max-drop'?: number;
  confidence?: number;
  agent?: string;
  episodes?: number;
  'max-evaluations'?: number;
  'time-limit'?: string;
  out?: string;
  resume?: boolean;
  'screen-samples'?: number;
  'w-acc'?: number;
  'w-lat'?: number;
  analysis?: string;
  'analysis-samples'?: number;
  'layer-calibration'?: string[];
  'pareto-steps'?: number;
  'metrics-port'?: number;
  proposals?: number;
  jobs?: number;
  queue?: string;
  report?: boolean;
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
}

export function withSearchOptions<T>(y: Argv<T>): Argv<T & SearchArgs> {
  return withExperimentOptions(y)
    .option('target', { type: 'string', default: 't4', describe: 'Latency target: t4 | a10 | l4 | a100 | h100 | h200 | orin-agx | orin-nano | xavier-agx | ort-cpu | profile:DIR' })
    .option('budget-ms', { type: 'number', describe: 'Hard latency budget in milliseconds' })
    .option('budget', { type: 'number', describe: 'Hard latency budget as a fraction of the all-FP16 latency (e.g. 0.8)' })
    .option('max-drop', { type: 'number', default: 0.01, describe: 'Accuracy floor: largest relative drop from FP32 (0.01 = 1 %)' })
    .option('confidence', { type: 'number', describe: 'Check the floor on the pessimistic end of the paired bootstrap interval of the drop at this level (e.g. 0.95), not on the drop itself' })
    .option('episodes', { type: 'number', describe: 'Episodes (policies proposed) for dqn and random (default 300)' })
    .option('max-evaluations', { type: 'number', describe: 'Stop after this many full evaluations' })
    .option('time-limit', { type: 'string', describe: 'Stop after this wall time, e.g. 90s, 10m, 1h (default 15m)' })
    .option('screen-samples', { type: 'number', default: 64, describe: 'Screen new policies on this many samples first; 0 scores every policy on all --eval-samples' })
    .option('w-acc', { type: 'number', default: 0.6, describe: 'Reward weight of the relative accuracy change' })
    .option('w-lat', { type: 'number', default: 0.4, describe: 'Reward weight of the relative latency change (vs all-FP16)' })
    .option('analysis', { type: 'string', describe: 'Reuse an analysis.json from trtmix analyze (same model and data) instead of analysing again' })
    .option('analysis-samples', { type: 'number', default: 64, describe: 'Samples per layer run of the sensitivity analysis' })
    .option('layer-calibration', {
      type: 'string',
      array: true,
      default: DEFAULT_LAYER_CALIBRATION,
      describe: 'Other calibrations an INT8 layer may choose for its input (extra actions): max, mse, entropy, percentile:P; "none" = --calibration only',
    })
    .option('proposals', { type: 'number', default: 1, describe: 'Policies proposed per round, evaluated at once (the vector env\'s width: DQN episodes in flight, the baselines\' independent probes); part of what decides the result' })
    .option('jobs', { type: 'number', describe: 'Evaluation workers on this machine (worker threads, each with its own onnxruntime session and a share of the cores); default: what the cores and memory allow, at most --proposals. Never changes the result' })
    .option('queue', { type: 'string', describe: 'Send evaluations to `trtmix worker` processes through a BullMQ queue on this Redis, e.g. redis://10.0.0.5:6379 (workers read the model and data from the same paths)' })
    .option('out', { type: 'string', describe: 'Output folder (default runs/<timestamp>)' }) as Argv<T & SearchArgs>;
}

/** Calibrations besides the default that an INT8 layer may choose in the search (DESIGN.md: a per-layer decision). */
export const DEFAULT_LAYER_CALIBRATION: string[] = ['mse'];

/** `mse`, `max`, `entropy`, `percentile:99.999` (or `percentile-99.999`) -> a calibration choice. */
export function parseCalibrationChoice(text: string): CalibrationChoice {
  const c = parseChoiceLabel(text);
  if (!c) throw new UserError(`--layer-calibration ${text} is not a calibration; write max, mse, entropy or percentile:99.999 (or none)`);
  if (c.method === 'percentile' && !(c.percentile! > 50 && c.percentile! <= 100)) {
    throw new UserError(`--layer-calibration ${text}: the percentile must be above 50 and at most 100`);
  }
  return c;
}

/** `--layer-calibration` -> its calibration choices (`none` = no others); a bad entry is the user's to fix. */
export function parseLayerCalibration(extra: readonly string[] | undefined): CalibrationChoice[] {
  const list = (extra ?? DEFAULT_LAYER_CALIBRATION).flatMap((t) => String(t).split(',')).map((t) => t.trim()).filter((t) => t !== '');
  if (list.length === 1 && list[0] === 'none') return [];
  return list.map(parseCalibrationChoice);
}

/**
 * The search's action set: INT8 with the default calibration, INT8 with each other calibration (those equal to the
 * default are dropped), mixed and FP16. A calibration changes the amax of the layer's input tensor, never the latency.
 */
export function searchActions(choices: readonly CalibrationChoice[], defaultChoice: CalibrationChoice): ActionOption[] {
  const others = new Map<string, CalibrationChoice>();
  for (const c of choices) if (choiceLabel(c) !== choiceLabel(defaultChoice)) others.set(choiceLabel(c), others.get(choiceLabel(c)) ?? c);
  return [{ precision: 'int8' }, ...[...others.values()].map((calibration) => ({ precision: 'int8' as const, calibration })), { precision: 'mixed' }, { precision: 'fp16' }];
}

/** --confidence: a level strictly between 0 and 1 (undefined = the floor is checked on the point estimate). */
export function parseConfidence(v: number | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!(typeof v === 'number' && v > 0 && v < 1)) {
    throw new UserError(`--confidence must be a level between 0 and 1, e.g. 0.95, got ${v}${typeof v === 'number' && v > 1 && v < 100 ? ` (write ${v / 100})` : ''}`);
  }
  return v;
}

/** --proposals / --jobs: a whole number >= 1. */
export function parseWorkers(name: 'proposals' | 'jobs', v: number | undefined, fallback: number): number {
  const n = v ?? fallback;
  if (!Number.isInteger(n) || n < 1) throw new UserError(`--${name} must be a whole number >= 1, got ${v}`);
  return n;
}

/** `90s`, `10m`, `1.5h`, or plain seconds -> milliseconds. */
export function parseDuration(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(String(text));
  if (!m) throw new UserError(`--time-limit ${text} is not a duration; write e.g. 90s, 10m or 1h`);
  const v = Number(m[1]);
  const unit = m[2] ?? 's';
  const ms = unit === 'ms' ? v : unit === 's' ? v * 1000 : unit === 'm' ? v * 60_000 : v * 3_600_000;
  if (!(ms > 0)) throw new UserError(`--time-limit ${text} must be longer than zero`);
  return ms;
}

export function defaultRunDir(now = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `runs/${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}-${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}`;
}

/**
 * Search quality (issue #17): every agent side by side on one model, per default calibration and evaluation budget,
 * over several seeds. Each cell is one `trtmix compare --json` process (the agents share its calibration and
 * analysis); the table gives, per calibration / evaluations / seed / agent, the best feasible policy's score,
 * latency and reward and the evaluations (and screening runs) the agent used, with all-INT8's latency beside it.
 *
 *   node --import tsx bench/search-quality.ts [--calibrations entropy,max,percentile] [--evaluations 10,20]
 *        [--seeds 0,1,2] [--agents dqn,greedy,bisect,knapsack,best-calibration,int8,fp16] [--eval-samples 64]
 *        [--calib-samples 32] [--max-drop 0.01] [--target t4] [--out bench/out/search-quality] [-- extra compare args]
 *
 * Without --model in the extra arguments it runs the built-in PP-OCRv4 example. Writes search-quality.json and
 * search-quality.md under --out, and prints the markdown table.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    calibrations: { type: 'string', default: 'entropy,max,percentile' },
    evaluations: { type: 'string', default: '10,20' },
    seeds: { type: 'string', default: '0,1,2' },
    agents: { type: 'string', default: 'dqn,greedy,bisect,knapsack,best-calibration,int8,fp16' },
    'eval-samples': { type: 'string', default: '64' },
    'calib-samples': { type: 'string', default: '32' },
    'max-drop': { type: 'string', default: '0.01' },
    target: { type: 'string', default: 't4' },
    out: { type: 'string', default: 'bench/out/search-quality' },
  },
});

interface Row { agent: string; evaluations: number; screeningRuns: number; score: number | null; latencyMs: number | null; reward: number | null }
interface Cell { calibration: string; evaluations: number; seed: number; fp32Score: number; int8LatencyMs: number | null; rows: Row[]; seconds: number }

const list = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean);
mkdirSync(args.out!, { recursive: true });
const cells: Cell[] = [];
for (const calibration of list(args.calibrations!)) {
  for (const evaluations of list(args.evaluations!).map(Number)) {
    for (const seed of list(args.seeds!).map(Number)) {
      const out = join(args.out!, `${calibration}-${evaluations}-${seed}`);
      const cli = [
        '--import', 'tsx', 'bin/trtmix.js', 'compare', '--json', '--quiet', '--calibration', calibration, '--evaluations', String(evaluations),
        '--seed', String(seed), '--agents', ...list(args.agents!), '--eval-samples', args['eval-samples']!, '--calib-samples', args['calib-samples']!,
        '--max-drop', args['max-drop']!, '--target', args.target!, '--out', out, ...positionals,
      ];
      const started = performance.now();
      const r = spawnSync(process.execPath, cli, { encoding: 'utf8', maxBuffer: 64 << 20 });
      if (r.status !== 0) throw new Error(`compare failed (${calibration}, ${evaluations}, seed ${seed}): ${r.stderr.trim().split('\n').at(-1)}`);
      const doc = JSON.parse(r.stdout);
      const int8 = doc.rows.find((x: Row) => x.agent === 'int8');
      const cell: Cell = {
        calibration, evaluations, seed, fp32Score: doc.fp32Score, int8LatencyMs: int8?.latencyMs ?? null,
        rows: doc.rows.map((x: Row) => ({ agent: x.agent, evaluations: x.evaluations, screeningRuns: x.screeningRuns, score: x.score, latencyMs: x.latencyMs, reward: x.reward })),
        seconds: (performance.now() - started) / 1000,
      };
      cells.push(cell);
      process.stderr.write(`${calibration} ${evaluations} evaluations seed ${seed}: ${cell.rows.map((x) => `${x.agent} ${x.reward?.toFixed(4) ?? '-'}`).join(', ')} (${cell.seconds.toFixed(0)} s)\n`);
      writeFileSync(join(args.out!, 'search-quality.json'), `${JSON.stringify(cells, null, 2)}\n`);
    }
  }
}
const f = (v: number | null, d: number) => (v === null ? '—' : v.toFixed(d));
const lines = [
  '| calibration | evaluations | seed | agent | best score | latency ms | reward | evaluations used (+ screening runs) |',
  '|---|---|---|---|---|---|---|---|',
];
for (const c of cells) {
  for (const r of c.rows) {
    lines.push(`| ${c.calibration} | ${c.evaluations} | ${c.seed} | ${r.agent} | ${f(r.score, 4)} | ${f(r.latencyMs, 3)} | ${r.score === null ? 'no feasible policy' : f(r.reward, 4)} | ${r.evaluations}${r.screeningRuns ? ` (+${r.screeningRuns})` : ''} |`);
  }
}
const md = `${lines.join('\n')}\n`;
writeFileSync(join(args.out!, 'search-quality.md'), md);
process.stdout.write(md);

/**
 * How long report.html takes to render for a long search: ~2000 evaluated policies over PP-OCRv4 rec's
 * 51 layers (simulated history, test/report-fixture.ts). Reports the median of a few runs, SVG-only and with PNG.
 *
 *   node --import tsx bench/report.ts [evaluations=2000] [runs=5]
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderSearchReport } from '../src/report/index.ts';
import { builtInExampleInput } from '../test/report-fixture.ts';

const evaluations = Number(process.argv[2] ?? 2000);
const runs = Number(process.argv[3] ?? 5);
const input = await builtInExampleInput(evaluations);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

for (const png of [false, true]) {
  const times: number[] = [];
  let htmlBytes = 0;
  for (let r = 0; r < runs; r++) {
    const dir = mkdtempSync(join(tmpdir(), 'trtmix-bench-report-'));
    const t0 = performance.now();
    const files = await renderSearchReport(input, dir, { png });
    times.push(performance.now() - t0);
    htmlBytes = statSync(files.html).size;
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(
    `report ${png ? 'SVG+PNG' : 'SVG only'}: ${input.history.length} evaluations, ${input.layers.length} layers: ` +
      `median ${median(times).toFixed(0)} ms over ${runs} runs (all: ${times.map((t) => t.toFixed(0)).join(', ')}), report.html ${(htmlBytes / 1024).toFixed(0)} KiB`,
  );
}

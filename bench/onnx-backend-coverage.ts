/**
 * `trtmix info` on every model of the ONNX project's backend test data, as a user would run it, and how each
 * ended: it passed (exit 0), it was refused with one clear line (exit 2, one `trtmix:` line, no stack, no
 * "internal error"), or anything else (a failure to fix).
 *
 *   git --git-dir=<onnx mirror> archive v1.22.0 onnx/backend/test/data | tar -x -C /tmp/onnx-backend
 *   node --import tsx bench/onnx-backend-coverage.ts /tmp/onnx-backend/onnx/backend/test/data [--out bench/out/onnx-backend]
 *
 * The data is not committed. Models run in one worker process (trtmix's own entry point, stdout and stderr
 * captured per model); a model that kills the worker is recorded as a crash and the worker restarts after it.
 * Writes <out>.json (every model) and <out>.md (counts per folder, failures, refusals grouped by message).
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

interface Outcome {
  model: string;
  code: number | null;
  verdict: 'pass' | 'clear' | 'failure';
  /** The error line (clear) or the first lines of stderr (failure). */
  message: string;
  seconds: number;
  /**
   * Models below opset 13 with test data: the largest difference between the test set's expected outputs and
   * what onnxruntime computes for the model as trtmix upgrades it (`maxRelDiff`) and as given (`asGiven`, where
   * onnxruntime runs it), relative to the output's largest value.
   */
  upgrade?: { maxRelDiff: number | null; asGiven?: number; note?: string };
}

const ERROR_LINE = /^trtmix: (?!internal error)/;

export function classify(code: number | null, stderr: string): Pick<Outcome, 'verdict' | 'message'> {
  const lines = stderr.trimEnd().split('\n').filter((l) => l.trim() !== '');
  if (code === 0) return { verdict: 'pass', message: '' };
  const errors = lines.filter((l) => l.startsWith('trtmix:'));
  const stack = lines.some((l) => /^\s+at /.test(l));
  if (code === 2 && errors.length === 1 && ERROR_LINE.test(errors[0]) && lines.at(-1) === errors[0] && !stack) {
    return { verdict: 'clear', message: errors[0].slice('trtmix: '.length) };
  }
  return { verdict: 'failure', message: lines.slice(0, 3).join(' | ') || `exit ${code}` };
}

function findModels(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir).sort()) {
    const p = join(dir, entry);
    if (statSync(p).isDirectory()) out.push(...findModels(p));
    else if (entry.endsWith('.onnx')) out.push(p);
  }
  return out;
}

/** Worker: runs `info` on each model of the list file, appending one JSON line per model to the results file. */
async function worker(listFile: string, resultsFile: string): Promise<void> {
  const { main } = await import('../src/cli/main.ts');
  const models = readFileSync(listFile, 'utf8').split('\n').filter(Boolean);
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  for (const model of models) {
    let stderr = '';
    const t0 = performance.now();
    process.stdout.write = (() => true) as typeof process.stdout.write;
    process.stderr.write = ((chunk: string | Uint8Array) => { stderr += String(chunk); return true; }) as typeof process.stderr.write;
    let code: number | null;
    try {
      process.exitCode = undefined;
      code = await main(['info', '--model', model]);
    } catch (e) {
      code = null;
      stderr += `uncaught: ${(e as Error).stack ?? e}`;
    } finally {
      process.stdout.write = out;
      process.stderr.write = err;
    }
    const outcome: Outcome = { model, code, ...classify(code, stderr), seconds: (performance.now() - t0) / 1000 };
    try {
      const upgrade = await checkUpgrade(model);
      if (upgrade) outcome.upgrade = upgrade;
    } catch (e) {
      outcome.upgrade = { maxRelDiff: null, note: `test data unreadable: ${(e as Error).message.slice(0, 120)}` };
    }
    appendFileSync(resultsFile, `${JSON.stringify(outcome)}\n`);
  }
  process.exitCode = 0;
}

/** ONNX test data tensors (test_data_set_0/<kind>_*.pb) as onnxruntime tensors, in file order; undefined if unreadable. */
async function testTensors(model: string, kind: 'input' | 'output') {
  const { decodeTensor } = await import('../src/onnx/model.ts');
  const { tensorRawBytes, tensorToFloat32, tensorDims } = await import('../src/onnx/tensor.ts');
  const { DTYPE_OF_ONNX, typedArray } = await import('../src/data/dtype.ts');
  const { ort } = await import('../src/onnx/runtime.ts');
  const dir = join(dirname(model), 'test_data_set_0');
  if (!existsSync(dir)) return undefined;
  const files = readdirSync(dir).filter((f) => new RegExp(`^${kind}_\\d+\\.pb$`).test(f)).sort((a, b) => Number(a.match(/\d+/)![0]) - Number(b.match(/\d+/)![0]));
  const out: Array<{ name: string; tensor: InstanceType<typeof ort.Tensor> }> = [];
  for (const f of files) {
    const t = decodeTensor(readFileSync(join(dir, f)));
    const dtype = DTYPE_OF_ONNX[t.dataType ?? 0];
    if (!dtype) return undefined;
    const dims = tensorDims(t);
    const raw = tensorRawBytes(t);
    let data = typedArray(dtype, dims.reduce((a, b) => a * b, 1));
    if (raw) data = new (data.constructor as new (b: ArrayBuffer) => typeof data)(new Uint8Array(raw).buffer);
    else if (dtype === 'int64') data = BigInt64Array.from(tensorToFloat32(t), (v) => BigInt(v));
    else (data as Float32Array).set(tensorToFloat32(t));
    out.push({ name: t.name ?? '', tensor: new ort.Tensor(dtype, data, dims) });
  }
  return out;
}

/** The upgrade check of one model (see Outcome.upgrade); undefined when it does not apply. */
async function checkUpgrade(model: string): Promise<Outcome['upgrade']> {
  const { loadModel, opsetVersion, structuralCopy } = await import('../src/onnx/model.ts');
  const { upgradeOpset, QDQ_MIN_OPSET } = await import('../src/onnx/opset.ts');
  const { Graph } = await import('../src/onnx/graph.ts');
  const { createSession, floatData, ort } = await import('../src/onnx/runtime.ts');
  let original;
  try {
    original = loadModel(model);
  } catch {
    return undefined;
  }
  if (opsetVersion(original) >= QDQ_MIN_OPSET) return undefined;
  const graph = new Graph(original);
  const inputs = await testTensors(model, 'input');
  const expected = await testTensors(model, 'output');
  if (!inputs || !expected || inputs.length > graph.inputs.length) return undefined;
  const feeds = Object.fromEntries(inputs.map((t, i) => [t.name || graph.inputs[i].name!, t.tensor]));
  const outputNames = graph.outputs.map((o) => o.name!);
  const run = async (m: typeof original) => {
    const s = await createSession(m, { optimization: 'basic' });
    try {
      return await s.run(feeds);
    } finally {
      await s.release();
    }
  };
  /** Largest |a - b| over the largest |expected|, across the outputs. */
  const diff = (got: Record<string, InstanceType<typeof ort.Tensor>>) => {
    let worst = 0;
    expected.forEach((e, i) => {
      const want = floatData(e.tensor);
      const have = floatData(got[e.name || outputNames[i]]);
      const scale = Math.max(1e-6, ...Array.from(want, Math.abs).filter(Number.isFinite));
      for (let k = 0; k < want.length; k++) {
        if (Number.isNaN(want[k]) && Number.isNaN(have[k])) continue;
        if (want[k] === have[k]) continue;
        worst = Math.max(worst, Math.abs(want[k] - have[k]) / scale);
      }
    });
    return worst;
  };
  let asGiven: number | null = null;
  try {
    asGiven = diff(await run(original));
  } catch {
    // onnxruntime has no kernel for some old opsets (Gemm-6): the test data's outputs are the reference alone.
  }
  try {
    return { maxRelDiff: diff(await run(upgradeOpset(structuralCopy(original)))), ...(asGiven !== null ? { asGiven } : {}) };
  } catch (e) {
    return { maxRelDiff: Infinity, note: `the upgraded model fails: ${(e as Error).message.slice(0, 200)}` };
  }
}

function report(root: string, outcomes: Outcome[]): string {
  const folderOf = (m: string) => relative(root, m).split('/')[0];
  const folders = [...new Set(outcomes.map((o) => folderOf(o.model)))];
  const lines = ['# trtmix info on the ONNX backend test data', '', '| folder | models | pass | one clear line | failure |', '|---|---:|---:|---:|---:|'];
  const count = (os: Outcome[], v: Outcome['verdict']) => os.filter((o) => o.verdict === v).length;
  for (const f of [...folders, 'all']) {
    const os = f === 'all' ? outcomes : outcomes.filter((o) => folderOf(o.model) === f);
    lines.push(`| ${f} | ${os.length} | ${count(os, 'pass')} | ${count(os, 'clear')} | ${count(os, 'failure')} |`);
  }
  const checked = outcomes.filter((o) => o.upgrade && o.upgrade.maxRelDiff !== null);
  // The upgrade is at fault where it moves the outputs further than onnxruntime's own numerics on the original do.
  const moved = checked.filter((o) => !(o.upgrade!.maxRelDiff! <= Math.max(1e-3, 10 * (o.upgrade!.asGiven ?? 0))));
  lines.push('', `Opset upgrade: ${checked.length} models below opset 13 run upgraded on their test data (${checked.filter((o) => o.upgrade!.asGiven === undefined).length} of them do not run in onnxruntime as given); ${moved.length} differ from the expected outputs by more than 1e-3 of the largest value (or 10x the original's difference).`);
  for (const o of moved) lines.push(`- ${relative(root, o.model)}: ${o.upgrade!.maxRelDiff} (as given: ${o.upgrade!.asGiven ?? 'does not run'}) ${o.upgrade!.note ?? ''}`);
  const failures = outcomes.filter((o) => o.verdict === 'failure');
  if (failures.length > 0) {
    lines.push('', '## Failures', '');
    for (const o of failures) lines.push(`- ${relative(root, o.model)}: ${o.message}`);
  }
  // Refusals grouped by what they say (the message with names and numbers blanked).
  const groups = new Map<string, Outcome[]>();
  for (const o of outcomes.filter((x) => x.verdict === 'clear')) {
    const key = o.message.replace(/'[^']*'|"[^"]*"|\([^)]*\)|\[[^\]]*\]|\S*[/\\.]\S*|\d+/g, '…').slice(0, 90);
    groups.set(key, [...(groups.get(key) ?? []), o]);
  }
  lines.push('', '## One clear line, by message', '', '| models | message (example) |', '|---:|---|');
  for (const [, os] of [...groups].sort((a, b) => b[1].length - a[1].length)) lines.push(`| ${os.length} | ${os[0].message.replace(/\|/g, '\\|')} (${relative(root, os[0].model)}) |`);
  return `${lines.join('\n')}\n`;
}

async function parent(root: string, outBase: string): Promise<void> {
  const models = findModels(root);
  if (models.length === 0) throw new Error(`no .onnx files under ${root}`);
  mkdirSync(dirname(outBase), { recursive: true });
  const resultsFile = `${outBase}.jsonl`;
  rmSync(resultsFile, { force: true });
  const listFile = `${outBase}.list`;
  const done = () => (existsSync(resultsFile) ? readFileSync(resultsFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Outcome) : []);
  const self = fileURLToPath(import.meta.url);
  for (let results = done(); results.length < models.length; results = done()) {
    const rest = models.slice(results.length);
    writeFileSync(listFile, `${rest.join('\n')}\n`);
    const r = spawnSync(process.execPath, ['--import', 'tsx', self, '--worker', listFile, resultsFile], { stdio: ['ignore', 'inherit', 'pipe'], encoding: 'utf8', maxBuffer: 1 << 28 });
    const after = done();
    if (after.length < models.length && r.status !== 0) {
      // The worker died inside the model after the last result: that model crashed trtmix.
      appendFileSync(resultsFile, `${JSON.stringify({ model: models[after.length], code: r.status, verdict: 'failure', message: `process died (${r.signal ?? `exit ${r.status}`}): ${(r.stderr ?? '').trim().split('\n').slice(-2).join(' | ')}`, seconds: 0 } satisfies Outcome)}\n`);
    }
    process.stderr.write(`${done().length}/${models.length} models\n`);
  }
  const outcomes = done();
  writeFileSync(`${outBase}.json`, `${JSON.stringify(outcomes, null, 1)}\n`);
  const md = report(root, outcomes);
  writeFileSync(`${outBase}.md`, md);
  process.stdout.write(md.split('\n## ')[0]);
  rmSync(listFile, { force: true });
}

const args = process.argv.slice(2);
if (args[0] === '--worker') {
  await worker(args[1], args[2]);
} else if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('onnx-backend-coverage.ts')) {
  const root = args.find((a) => !a.startsWith('--'));
  if (!root) {
    process.stderr.write('usage: node --import tsx bench/onnx-backend-coverage.ts DATA_DIR [--out bench/out/onnx-backend]\n');
    process.exit(2);
  }
  const outAt = args.indexOf('--out');
  await parent(resolve(root), resolve(outAt >= 0 ? args[outAt + 1] : join('bench', 'out', 'onnx-backend')));
}

import { dirname, join, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import type { CommandModule } from 'yargs';
import type { GlobalOptions } from '../main.ts';
import { loadModelAndLayers, recordedInputShapes } from '../model-options.ts';
import { PPOCR_MODELS } from '../../examples.ts';
import { UserError } from '../../errors.ts';
import { EXPORT_FORMATS, EXPORT_FILE_NAMES, DEFAULT_TRT_VERSION, CORRECTED_MODEL_FILE, correctsBiases, renderExport, writeCorrectedModel, writeExport, type ExportFormat } from '../../export/index.ts';
import { readPolicyFile, checkPolicyModel } from '../../export/policy-file.ts';

interface Args extends GlobalOptions {
  policy: string;
  model?: string;
  'input-shape'?: string[];
  format: ExportFormat;
  out?: string;
  wildcard?: boolean;
  'trt-version'?: string;
  calib?: string;
  force?: boolean;
}

export const exportCommand: CommandModule<GlobalOptions, Args> = {
  command: 'export <policy>',
  describe: 'Write a policy for a TensorRT build (trtexec, Python, QDQ ONNX, ...)',
  builder: (y) =>
    y
      .positional('policy', { type: 'string', describe: 'policy.json from a search', demandOption: true })
      .option('model', { type: 'string', describe: 'The ONNX model the policy was searched on (default: the path the policy records)' })
      .option('input-shape', { type: 'string', array: true, describe: 'Concrete input shape for dynamic dims, name:1x3x48x320 (repeat per input)' })
      .option('format', { choices: EXPORT_FORMATS, demandOption: true, describe: 'What to write' })
      .option('out', { type: 'string', describe: 'File to write (atomically); default: stdout' })
      .option('wildcard', { type: 'boolean', describe: 'trtexec: name* patterns that also cover the extra layers the ONNX parser makes for a node (TensorRT 10 trtexec)' })
      .option('trt-version', { type: 'string', default: DEFAULT_TRT_VERSION, describe: 'TensorRT release the calibration cache header names (8.6.1, 10.3.0, ...)' })
      .option('calib', { type: 'string', describe: 'Calibration cache path the trtexec / Polygraphy commands read (default: calibration.cache beside --out)' })
      .option('force', { type: 'boolean', describe: 'Export even if the model is not the one the policy was searched on (sha256 differs)' })
      .epilogue('Formats: trtexec and polygraphy (a command per TensorRT generation: 11 and 10.x build model.qdq.onnx, 8.4-10.x take per-layer flags), json (precision.json), trt-python (build_engine.py, every generation), qdq-onnx (explicit quantization; the only form TensorRT 11 takes), calib-cache (TensorRT <= 10).')
      .example([
        ['$0 export runs/x/policy.json --model rec.onnx --format trtexec', 'Print the trtexec command'],
        ['$0 export runs/x/policy.json --model rec.onnx --format calib-cache --trt-version 10.3.0 --out calibration.cache', 'Write the INT8 calibration cache for TensorRT 10.3'],
      ]) as any,
  handler: async (args) => {
    if (args.format === 'qdq-onnx' && !args.out && (args.json || process.stdout.isTTY)) {
      throw new UserError('model.qdq.onnx is a binary ONNX file; name where to write it with --out model.qdq.onnx');
    }
    const policy = readPolicyFile(args.policy);
    const modelPath = args.model ?? policy.model.path;
    if (!existsSync(modelPath)) {
      throw new UserError(`model ${modelPath} ${args.model ? 'does not exist' : '(recorded in the policy) does not exist'}; pass it with --model`);
    }
    const { sha256, matches } = checkPolicyModel(policy, modelPath, args.force);
    if (!matches && !args.quiet) process.stderr.write(`trtmix: warning: exporting for ${modelPath}, whose sha256 differs from the policy's model (--force)\n`);
    const builtIn = resolve(modelPath) === resolve(PPOCR_MODELS.rec.path);
    const m = await loadModelAndLayers({ model: builtIn && !args['input-shape'] ? undefined : modelPath, 'input-shape': args['input-shape'] }, { recordedShapes: recordedInputShapes(policy) });
    const out = args.out;
    const calibPath = args.calib ?? (out ? join(dirname(out), EXPORT_FILE_NAMES['calib-cache']) : EXPORT_FILE_NAMES['calib-cache']);
    const inputs = { policy, layers: m.layers, graph: m.graph, model: { path: modelPath, sha256 }, inputShapes: m.inputShapes };
    // A bias-corrected policy: the implicit path builds from model.corrected.onnx, written beside --out.
    let correctedModel: { path: string; sha256: string } | undefined;
    if (correctsBiases(policy) && args.format !== 'qdq-onnx' && args.format !== 'calib-cache') {
      correctedModel = writeCorrectedModel(join(out ? dirname(out) : '.', CORRECTED_MODEL_FILE), inputs).ref;
      if (!args.quiet) process.stderr.write(`trtmix: the policy corrects biases; wrote ${correctedModel.path}, which the command builds from\n`);
    }
    const rendered = renderExport(args.format, inputs, {
      ...(correctedModel ? { correctedModel } : {}),
      wildcard: args.wildcard,
      trtVersion: args['trt-version'],
      calibPath,
      qdqPath: out ? join(dirname(out), EXPORT_FILE_NAMES['qdq-onnx']) : EXPORT_FILE_NAMES['qdq-onnx'],
      scriptPath: out ? join(dirname(out), EXPORT_FILE_NAMES['trt-python']) : EXPORT_FILE_NAMES['trt-python'],
    });
    if (!out && rendered.model && rendered.content.length === 0) {
      throw new UserError(`${modelPath} keeps its weights in external data, and so does its model.qdq.onnx; name where to write it with --out model.qdq.onnx (model.qdq.onnx.data goes beside it)`);
    }
    if (out) writeExport(out, rendered);
    if (!args.quiet) for (const w of rendered.warnings) process.stderr.write(`trtmix: warning: ${w}\n`);
    const readsCalib = (args.format === 'trtexec' || args.format === 'polygraphy') && policy.layers.some((l) => l.precision === 'int8' || l.precision === 'mixed');
    if (readsCalib && !args.quiet && !existsSync(calibPath)) {
      process.stderr.write(`trtmix: the command reads ${calibPath}; write it with: trtmix export ${args.policy} --model ${modelPath} --format calib-cache --out ${calibPath}\n`);
    }
    if (args.json) {
      process.stdout.write(`${JSON.stringify({ format: args.format, out: out ?? null, ...(out ? {} : { content: rendered.content }), warnings: rendered.warnings }, null, 2)}\n`);
    } else if (out) {
      if (!args.quiet) process.stderr.write(`trtmix: wrote ${out}\n`);
    } else {
      process.stdout.write(rendered.content);
    }
  },
};

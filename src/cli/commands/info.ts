import type { CommandModule } from 'yargs';
import { withModelOptions, loadModelAndLayers, type ModelArgs } from '../model-options.ts';
import { formatTable, formatMacs } from '../table.ts';
import { opsetVersion, toNumber } from '../../onnx/model.ts';
import type { GlobalOptions } from '../main.ts';
import { hasExternalData } from '../../onnx/external-data.ts';
import { fixedBatchOf } from '../../data/dataset.ts';
import { modelInputs } from '../../onnx/layers.ts';

type Args = GlobalOptions & ModelArgs;

/** The batch every input fixes, if they agree (inputs without a batch axis, e.g. matrices, may fix other sizes). */
function fixedBatch(m: { graph: Parameters<typeof modelInputs>[0] }): number | undefined {
  try {
    return fixedBatchOf(modelInputs(m.graph));
  } catch {
    return undefined;
  }
}

export const infoCommand: CommandModule<GlobalOptions, Args> = {
  command: 'info',
  describe: 'List the quantizable layers of a model (shapes, MACs, fused activation)',
  builder: (y) =>
    withModelOptions(y).example([
      ['$0 info', 'Layer table of the built-in PP-OCRv4 recognizer'],
      ['$0 info --model resnet50.onnx --input-shape input:1x3x224x224 --json', 'Layers of your model as JSON'],
    ]) as any,
  handler: async (args) => {
    const m = await loadModelAndLayers(args);
    const total = m.layers.reduce((a, l) => a + l.macs, 0);
    if (args.json) {
      const doc = {
        model: m.path,
        irVersion: toNumber(m.original.irVersion),
        opset: opsetVersion(m.original),
        inputShapes: m.inputShapes,
        totalMacs: total,
        externalData: hasExternalData(m.original),
        fixedBatch: fixedBatch(m) ?? null,
        controlFlowLayers: m.controlFlowLayers,
        layers: m.layers.map((l) => ({
          name: l.name, op: l.op, inputShape: l.inputShape, weightShape: l.weightShape, outputShape: l.outputShape,
          kernel: l.kernel, stride: l.stride, groups: l.groups, depthwise: l.depthwise, weightIsConstant: l.weightIsConstant,
          macs: l.macs, params: l.params, macsShare: l.macs / total, activation: l.activation ?? null,
        })),
      };
      process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
      return;
    }
    const rows = m.layers.map((l) => [
      l.index, l.name, l.op + (l.depthwise ? ' dw' : l.weightIsConstant ? '' : ' act×act'),
      l.inputShape.join('x'), l.weightShape.join('x'), l.outputShape.join('x'),
      formatMacs(l.macs), `${((100 * l.macs) / total).toFixed(1)}%`, l.activation ?? '',
    ]);
    const notes = [
      ...(hasExternalData(m.original) ? ['weights in external data beside the model'] : []),
      ...(fixedBatch(m) ? [`fixed batch ${fixedBatch(m)}`] : []),
    ];
    process.stdout.write(`${m.path}\nopset ${opsetVersion(m.original)}, inputs ${Object.entries(m.inputShapes).map(([k, v]) => `${k}:${v.join('x')}`).join(' ')}, ${m.layers.length} quantizable layers, ${formatMacs(total)} MACs per sample${notes.length ? `; ${notes.join(', ')}` : ''}\n\n`);
    process.stdout.write(`${formatTable(['#', 'layer', 'op', 'input', 'weight', 'output', 'MACs', 'share', 'activation'], rows, ['r', 'l', 'l', 'l', 'l', 'l', 'r', 'r', 'l'])}\n`);
    if (m.controlFlowLayers.length > 0) {
      const parents = [...new Set(m.controlFlowLayers.map((c) => `${c.parentOp} ${c.parent}`))];
      process.stdout.write(`\n${m.controlFlowLayers.length} more ${m.controlFlowLayers.length === 1 ? 'layer sits' : 'layers sit'} inside ${parents.join(', ')} and ${m.controlFlowLayers.length === 1 ? 'stays' : 'stay'} FP32: trtmix decides only the layers of the main graph (${m.controlFlowLayers.slice(0, 4).map((c) => c.name).join(', ')}${m.controlFlowLayers.length > 4 ? ', ...' : ''})\n`);
    }
  },
};

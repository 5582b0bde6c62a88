export { encodeNpy, parseNpy, readNpy, writeNpy, shapeSize, formatShape, type NpyArray, type NpyData, type NpyDtype } from './npy.ts';
export { encodeNpz, parseNpz, readNpz, writeNpz } from './npz.ts';
export { loadLabels, parseLabelText, type Label } from './labels.ts';
export {
  loadDataset, splitDataset, takeSamples, sliceBatch, batches, shuffledIndices,
  fixedBatchOf,
  type Dataset, type SampleGroup, type TensorData, type ModelDim, type ModelInputSpec, type LoadDatasetOptions, type SplitOptions, type DatasetSplit,
} from './dataset.ts';
export { batchRanges, batchInputs, dropPadding, sampleGroups, groupShapes, inputNames, effectiveBatch, type SampleSource } from './batches.ts';
export { DTYPE_OF_ONNX, isFloatDtype, onnxTypeName, toFloat32, typedArray, type TensorDtype, type TypedData } from './dtype.ts';
export { writeFileAtomic } from '../fs.ts';

export { encodeNpy, parseNpy, readNpy, writeNpy, shapeSize, formatShape, type NpyArray, type NpyData, type NpyDtype } from './npy.ts';
export { encodeNpz, parseNpz, readNpz, writeNpz } from './npz.ts';
export { loadLabels, parseLabelText, type Label } from './labels.ts';
export {
  loadDataset, splitDataset, takeSamples, sliceBatch, batches, shuffledIndices,
  type Dataset, type TensorData, type ModelDim, type ModelInputSpec, type LoadDatasetOptions, type SplitOptions, type DatasetSplit,
} from './dataset.ts';
export { writeFileAtomic } from '../fs.ts';

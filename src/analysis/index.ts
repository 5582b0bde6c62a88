/** Per-layer INT8 sensitivity analysis: computed in-process (analyzeLayers) or read back from analysis.json (loadAnalysis). */
export {
  analyzeLayers, cachedAnalysis, rankLayers, scoreDrop, layerFlags,
  ANALYSIS_VERSION, DEFAULT_ANALYSIS_SAMPLES, DEFAULT_STATS_SAMPLES, KL_FLAG, OVERLAP_FLAG, RANGE_WASTE_FLAG, AMAX_METHODS,
  type Analysis, type LayerAnalysis, type LayerFlag, type AnalyzeOptions, type AnalyzeProgress, type AnalysisSubject,
} from './analyze.ts';
export { writeAnalysis, loadAnalysis, layersInOrder, toAnalysisInput, analysisMarkdown, analysisMetrics, analysisJson, type AnalysisFiles } from './files.ts';
export { OutputComparison, klDivergence, histogramOverlap, rangeWaste, type ComparisonResult } from './compare.ts';

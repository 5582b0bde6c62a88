// Types for char-accuracy.mjs (a plain-JS plugin, so TypeScript callers need this declaration).
export interface SampleTensor {
  data: Float32Array;
  dims: number[];
}
export type SampleOutputs = Record<string, SampleTensor>;

export declare const DICTIONARY_PATH: string;
export declare function loadCharacters(path?: string): string[];
export declare function ctcGreedyDecode(probs: Float32Array, dims: readonly number[], chars?: readonly string[]): string;
export declare function editDistance(a: string, b: string): number;
export declare function lineErrors(predictions: readonly string[], labels: readonly unknown[]): Array<[number, number]>;
export declare function accuracyFromErrors(sums: readonly number[]): number;
export declare function charAccuracy(predictions: readonly string[], labels: readonly unknown[]): number;
export declare function decodeAll(outputs: readonly SampleOutputs[]): string[];

declare const metric: {
  name: 'char-accuracy';
  higherIsBetter: true;
  score(args: { outputs: SampleOutputs[]; reference?: SampleOutputs[]; labels?: unknown[] }): number;
  statistics(args: { outputs: SampleOutputs[]; reference?: SampleOutputs[]; labels?: unknown[] }): Array<[number, number]>;
  fromStatistics(sums: number[]): number;
};
export default metric;

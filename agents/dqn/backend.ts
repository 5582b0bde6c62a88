/**
 * The one place that chooses the TensorFlow.js backend: `@tensorflow/tfjs-node-gpu` (CUDA) when it is
 * installed, an optional dependency for CUDA machines, else the pure-JS cpu backend shipped with
 * @tensorflow/tfjs. The cpu backend is bitwise deterministic; CUDA kernels may not be.
 */
import * as tf from '@tensorflow/tfjs';

let chosen: Promise<string> | undefined;

async function choose(): Promise<string> {
  // Production mode skips per-op debug checks and the "install tfjs-node" console banner.
  tf.enableProdMode();
  // A variable specifier keeps the optional package out of type checking and bundling.
  const gpuPackage = '@tensorflow/tfjs-node-gpu';
  try {
    await import(gpuPackage);
  } catch {
    // Not installed (the usual case): the cpu backend below is used.
  }
  if (tf.findBackend('tensorflow')) await tf.setBackend('tensorflow');
  else await tf.setBackend('cpu');
  await tf.ready();
  return tf.getBackend();
}

/** Selects the backend once per process; returns its name ("tensorflow" or "cpu"). */
export function initTfBackend(): Promise<string> {
  chosen ??= choose();
  return chosen;
}

import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'vitest';

/** Deterministic pseudo-random numbers in [-1, 1) (mulberry32), so failures reproduce. */
export function seededValues(count: number, seed: number): Float32Array {
  let state = seed >>> 0;
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    values[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return values;
}

export function seededTensor(shape: number[], seed: number): tf.Tensor {
  return tf.tensor(seededValues(shape.reduce((a, b) => a * b, 1), seed), shape);
}

export interface Outputs {
  shapes: number[][];
  values: tf.TypedArray[];
}

function evaluate(compute: () => tf.Tensor | tf.Tensor[]): Outputs {
  const result = tf.tidy(compute);
  const tensors = Array.isArray(result) ? result : [result];
  const outputs = { shapes: tensors.map((t) => t.shape), values: tensors.map((t) => t.dataSync() as tf.TypedArray) };
  tf.dispose(tensors);
  return outputs;
}

/** Runs `compute` on wasm and then on cpu, building its inputs anew on each backend. */
export async function onBothBackends(compute: () => tf.Tensor | tf.Tensor[]): Promise<{ wasm: Outputs; cpu: Outputs }> {
  expect(tf.getBackend()).toBe('wasm');
  const wasm = evaluate(compute);
  await tf.setBackend('cpu');
  try {
    return { wasm, cpu: evaluate(compute) };
  } finally {
    await tf.setBackend('wasm');
  }
}

/** Expects equal shapes and values within 1e-4 * max |cpu value| + 1e-5 for every output. */
export function expectSameOutputs({ wasm, cpu }: { wasm: Outputs; cpu: Outputs }): void {
  expect(wasm.shapes).toEqual(cpu.shapes);
  for (let i = 0; i < cpu.values.length; i++) {
    const actual = wasm.values[i]!;
    const expected = cpu.values[i]!;
    let maxDiff = 0;
    let maxRef = 0;
    for (let j = 0; j < expected.length; j++) {
      maxDiff = Math.max(maxDiff, Math.abs(actual[j]! - expected[j]!));
      maxRef = Math.max(maxRef, Math.abs(expected[j]!));
    }
    const bound = 1e-4 * maxRef + 1e-5;
    expect(maxDiff, `output ${i}: max abs diff ${maxDiff} exceeds ${bound}`).toBeLessThanOrEqual(bound);
  }
}

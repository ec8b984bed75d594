/**
 * Faster Transpose and Unpack kernels for the tfjs wasm backend (4.22.0), for recurrent layers.
 *
 * tfjs-layers runs TimeDistributed and every RNN, ConvLSTM2D included, through one loop. It
 * transposes [batch, time, ...] to time-major, unstacks the time steps and stacks the outputs on
 * axis 1, and the gradient of that stack is an Unpack on axis 1. Both stock kernels are slow on
 * these rank-5 tensors:
 * - Transpose drops size-1 axes but is far slower at rank 5 than at rank 3 for the same data.
 *   On a 2-core x86 machine, swapping the first two axes of [8, 4, 36, 48, 16] took 61 ms, and
 *   the same swap as [8, 4, 27648] took 2.4 ms.
 * - Unpack runs one Slice per output, and each Slice copies its whole input out of the wasm heap
 *   with readSync, so unstacking n steps copies the input n times. Off axis 0, Slice also falls
 *   back to a per-element loop at rank 5.
 * Neither kernel is missing, so models train without these replacements, only more slowly. On the
 * same machine, a training step of the default video autoencoder (4 clips of 8 frames of 96x72)
 * took 2.6 s with the stock kernels and 0.47 s with these.
 */
import * as tf from '@tensorflow/tfjs-core';
import { getKernel, registerKernel, Transpose, unregisterKernel, Unpack } from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, NamedAttrMap, NamedTensorInfoMap, TensorInfo, TransposeAttrs, UnpackAttrs } from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';

import { WASM_BACKEND, type WasmBackend } from './wasm-kernels.js';

/**
 * Merges the axes that a permutation keeps next to each other and in order, so that the stock
 * kernel moves the same data at the lowest rank. Swapping batch and time in
 * [batch, time, height, width, channels] becomes a rank-3 transpose.
 */
export function mergeTransposeAxes(shape: readonly number[], perm: readonly number[]): { shape: number[]; perm: number[] } {
  // Runs of input axes that stay consecutive in the output, in output order.
  const runs: number[][] = [];
  for (let i = 0; i < perm.length; i++) {
    const previous = runs[runs.length - 1];
    if (previous !== undefined && perm[i] === previous[previous.length - 1]! + 1) previous.push(perm[i]!);
    else runs.push([perm[i]!]);
  }

  const inputOrder = [...runs].sort((a, b) => a[0]! - b[0]!);
  return {
    shape: inputOrder.map((run) => run.reduce((size, axis) => size * shape[axis]!, 1)),
    perm: runs.map((run) => inputOrder.indexOf(run)),
  };
}

/** The kernels that tfjs-backend-wasm registered under these names, which the new ones fall back on. */
const stockKernels = new Map<string, KernelConfig>();

function runStock(kernelName: string, args: Parameters<KernelFunc>[0]): TensorInfo | TensorInfo[] {
  const stock = stockKernels.get(kernelName);
  if (stock === undefined) throw new Error(`tfjs-backend-wasm registered no ${kernelName} kernel to fall back on`);
  return stock.kernelFunc(args);
}

function transposeKernel({ inputs, attrs, backend }: { inputs: NamedTensorInfoMap; attrs?: NamedAttrMap; backend: {} }): TensorInfo {
  const x = inputs.x!;
  const { perm } = attrs as unknown as TransposeAttrs;
  const merged = mergeTransposeAxes(x.shape, perm);
  const output = runStock(Transpose, {
    inputs: { x: { dataId: x.dataId, shape: merged.shape, dtype: x.dtype } },
    attrs: { perm: merged.perm } as unknown as NamedAttrMap,
    backend,
  }) as TensorInfo;

  // The merged and the full output shapes describe the same row-major data.
  return { dataId: output.dataId, dtype: output.dtype, shape: perm.map((axis) => x.shape[axis]!) };
}

/**
 * Splits a tensor along one axis by copying blocks directly between heap views. With the tensor
 * viewed as [outer, count, inner], output i contains the `inner`-long block at (o, i) for every o.
 */
function unpackKernel({ inputs, attrs, backend }: { inputs: NamedTensorInfoMap; attrs?: NamedAttrMap; backend: {} }): TensorInfo[] {
  const value = inputs.value!;
  // Strings live outside the wasm heap.
  if (value.dtype === 'string') return runStock(Unpack, { inputs, attrs, backend }) as TensorInfo[];
  const wasm = backend as WasmBackend;
  const rank = value.shape.length;
  const { axis: rawAxis } = attrs as unknown as UnpackAttrs;
  const axis = rawAxis < 0 ? rawAxis + rank : rawAxis;
  const count = value.shape[axis]!;
  const outer = value.shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = value.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outShape = value.shape.filter((_, i) => i !== axis);

  const outputs: TensorInfo[] = [];
  for (let i = 0; i < count; i++) {
    const output = wasm.makeOutput(outShape, value.dtype);
    // makeOutput may grow the heap, so the input view is taken after it.
    const source = wasm.typedArrayFromHeap(value);
    const target = wasm.typedArrayFromHeap(output);
    for (let o = 0; o < outer; o++) {
      const start = (o * count + i) * inner;
      target.set(source.subarray(start, start + inner), o * inner);
    }
    outputs.push(output);
  }
  return outputs;
}

const KERNELS: ReadonlyArray<{ kernelName: string; kernelFunc: KernelFunc }> = [
  { kernelName: Transpose, kernelFunc: transposeKernel as KernelFunc },
  { kernelName: Unpack, kernelFunc: unpackKernel as unknown as KernelFunc },
];

/** Names of the kernels that `registerWasmRecurrentKernels` replaces on the wasm backend. */
export const WASM_RECURRENT_KERNELS: readonly string[] = Object.freeze(KERNELS.map((kernel) => kernel.kernelName));

/**
 * Replaces the wasm Transpose and Unpack kernels. Calling it again does nothing. Like
 * `registerWasmTrainingKernels`, it applies to the whole thread. Each new kernel keeps the stock
 * kernel's setupFunc, because it may call the stock kernel, whose wasm function that setup binds
 * when the backend starts.
 */
export function registerWasmRecurrentKernels(): void {
  for (const { kernelName, kernelFunc } of KERNELS) {
    const existing = getKernel(kernelName, WASM_BACKEND);
    if (existing?.kernelFunc === kernelFunc) continue;
    if (existing !== undefined) {
      stockKernels.set(kernelName, existing);
      unregisterKernel(kernelName, WASM_BACKEND);
    }
    registerKernel({ kernelName, backendName: WASM_BACKEND, kernelFunc, setupFunc: existing?.setupFunc });
  }
}

/**
 * Times the wasm convolution kernels: the forward Conv2D that tfjs-backend-wasm ships, the two
 * gradient kernels from wasm-kernels.ts, the filter gradient's older route through the forward
 * convolution, and the Conv2DBackpropInput that tfjs-backend-wasm ships.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Conv2D, Conv2DBackpropFilter, Conv2DBackpropInput } from '@tensorflow/tfjs-core';
import type { KernelBackend, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import { initBackend } from './select.js';
import { replacedWasmKernel, useFilterGradientRoute } from './wasm-kernels.js';

export interface ConvBenchShape {
  batch: number;
  height: number;
  width: number;
  inChannels: number;
  outChannels: number;
  filterSize: number;
  stride: number;
}

export interface ConvBenchRow {
  /**
   * Kernel name, with " (replaced)" for the Conv2DBackpropInput that tfjs-backend-wasm ships and
   * " (convolution route)" for the filter gradient's older route.
   */
  op: string;
  /** Forward-pass geometry, e.g. "n16 64x64 32->32 k3x3 s2 same". */
  shape: string;
  /** Mean wall time of one kernel call, in milliseconds. */
  ms: number;
  /**
   * Billions of floating-point operations per second. Every kernel counts 2 * n * outH * outW *
   * kh * kw * ci * co per call, twice the direct method's multiply-adds, so the rows of one
   * shape compare wall time even where a kernel does extra work.
   */
  gflops: number;
}

export interface ConvBenchOptions {
  shapes?: readonly ConvBenchShape[];
  /** Minimum timed calls per row, after one untimed warm-up call. */
  repeats?: number;
  /** Keep calling until this much time has passed, in milliseconds, to smooth out short rows. */
  minMs?: number;
  /** Also time the replaced Conv2DBackpropInput of tfjs-backend-wasm, which is about ten times slower. */
  includeReplaced?: boolean;
}

export const DEFAULT_CONV_BENCH_SHAPES: readonly ConvBenchShape[] = Object.freeze([
  { batch: 16, height: 64, width: 64, inChannels: 32, outChannels: 32, filterSize: 3, stride: 1 },
  { batch: 16, height: 64, width: 64, inChannels: 32, outChannels: 32, filterSize: 3, stride: 2 },
  { batch: 16, height: 64, width: 64, inChannels: 32, outChannels: 32, filterSize: 1, stride: 1 },
  { batch: 16, height: 64, width: 64, inChannels: 3, outChannels: 32, filterSize: 3, stride: 1 },
  { batch: 4, height: 128, width: 128, inChannels: 16, outChannels: 16, filterSize: 3, stride: 2 },
]);

function describeShape(shape: ConvBenchShape): string {
  const { batch, height, width, inChannels, outChannels, filterSize, stride } = shape;
  return `n${batch} ${height}x${width} ${inChannels}->${outChannels} k${filterSize}x${filterSize} s${stride} same`;
}

/** Times `run`, which must return the tensors it creates so they can be disposed between calls. */
function timeCalls(run: () => tf.TensorContainer, repeats: number, minMs: number): number {
  tf.dispose(run());
  let calls = 0;
  const start = performance.now();
  while (calls < repeats || performance.now() - start < minMs) {
    tf.dispose(run());
    calls++;
  }
  return (performance.now() - start) / calls;
}

/** Calls the replaced kernel's function directly, because it is no longer in the registry. */
function runReplacedKernel(kernelName: string, inputs: NamedTensorInfoMap, attrs: NamedAttrMap): () => tf.Tensor {
  const config = replacedWasmKernel(kernelName);
  if (config === undefined) throw new Error(`No replaced wasm kernel ${kernelName} to benchmark`);
  const backend = tf.backend() as KernelBackend;
  config.setupFunc?.(backend);
  return () => {
    const output = config.kernelFunc({ inputs, attrs, backend }) as TensorInfo;
    return tf.engine().makeTensorFromTensorInfo(output);
  };
}

/** Runs `run` with the filter gradient that the SIMD kernel replaced, for the kernel table. */
function throughConvolution(run: () => tf.TensorContainer): tf.TensorContainer {
  const previous = useFilterGradientRoute('convolution');
  try {
    return run();
  } finally {
    useFilterGradientRoute(previous);
  }
}

function benchShape(shape: ConvBenchShape, options: Required<Omit<ConvBenchOptions, 'shapes'>>): ConvBenchRow[] {
  const { batch, height, width, inChannels, outChannels, filterSize, stride } = shape;
  const x = tf.randomUniform([batch, height, width, inChannels], -1, 1, 'float32', 1) as tf.Tensor4D;
  const filter = tf.randomUniform([filterSize, filterSize, inChannels, outChannels], -1, 1, 'float32', 2) as tf.Tensor4D;
  const y = tf.conv2d(x, filter, stride, 'same');
  const dy = tf.randomUniform(y.shape, -1, 1, 'float32', 3) as tf.Tensor4D;
  const [, outHeight, outWidth] = y.shape;
  const flop = 2 * batch * outHeight * outWidth * filterSize * filterSize * inChannels * outChannels;

  const common = { strides: stride, pad: 'same', dataFormat: 'NHWC' } as const;
  const inputAttrs = { ...common, inputShape: x.shape } as unknown as NamedAttrMap;
  const filterAttrs = { ...common, filterShape: filter.shape } as unknown as NamedAttrMap;
  const runs: Array<[string, () => tf.TensorContainer]> = [
    [Conv2D, () => tf.conv2d(x, filter, stride, 'same')],
    [Conv2DBackpropInput, () => tf.engine().runKernel(Conv2DBackpropInput, { dy, filter }, inputAttrs)],
    [Conv2DBackpropFilter, () => tf.engine().runKernel(Conv2DBackpropFilter, { x, dy }, filterAttrs)],
    [`${Conv2DBackpropFilter} (convolution route)`, () => throughConvolution(() => tf.engine().runKernel(Conv2DBackpropFilter, { x, dy }, filterAttrs))],
  ];
  if (options.includeReplaced) {
    runs.push([`${Conv2DBackpropInput} (replaced)`, runReplacedKernel(Conv2DBackpropInput, { dy, filter }, inputAttrs)]);
  }

  try {
    return runs.map(([op, run]) => {
      const ms = timeCalls(run, options.repeats, options.minMs);
      return { op, shape: describeShape(shape), ms, gflops: flop / ms / 1e6 };
    });
  } finally {
    tf.dispose([x, filter, y, dy]);
  }
}

/**
 * Times forward Conv2D and both convolution gradient kernels on the wasm backend (and, on
 * request, the replaced Conv2DBackpropInput), one row per kernel and shape. Starts the wasm
 * backend for the call, and makes the previously active backend active again afterwards.
 */
export async function benchConvKernels(options: ConvBenchOptions = {}): Promise<ConvBenchRow[]> {
  const settings = {
    repeats: options.repeats ?? 3,
    minMs: options.minMs ?? 200,
    includeReplaced: options.includeReplaced ?? false,
  };
  const previous = tf.getBackend();
  await initBackend('wasm');
  try {
    return (options.shapes ?? DEFAULT_CONV_BENCH_SHAPES).flatMap((shape) => benchShape(shape, settings));
  } finally {
    if (previous != null && previous !== tf.getBackend()) await tf.setBackend(previous);
  }
}

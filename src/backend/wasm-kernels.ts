/**
 * Convolution gradient kernels for the tfjs wasm backend (4.22.0), built from its fast XNNPACK
 * forward Conv2D.
 *
 * That backend registers no Conv2DBackpropFilter, so training any conv net fails with
 * "Kernel 'Conv2DBackpropFilter' not registered for backend 'wasm'", and no depthwise gradients,
 * which depthwiseConv2d and separableConv2d layers need. Its own Conv2DBackpropInput runs about
 * ten times slower than the forward Conv2D, and it is also the forward pass of conv2dTranspose,
 * which decoders use at inference time.
 *
 * The kernels call public tfjs ops. That works because a kernel registered for 'wasm' only ever
 * runs while 'wasm' is the active backend, and the engine does not record kernel-internal ops on
 * the gradient tape.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  backend_util,
  Conv2DBackpropFilter,
  Conv2DBackpropInput,
  DepthwiseConv2dNativeBackpropFilter,
  DepthwiseConv2dNativeBackpropInput,
  getKernel,
  registerKernel,
  unregisterKernel,
} from '@tensorflow/tfjs-core';
import type {
  Conv2DBackpropFilterAttrs,
  Conv2DBackpropInputAttrs,
  DepthwiseConv2dNativeBackpropFilterAttrs,
  DepthwiseConv2dNativeBackpropInputAttrs,
  KernelBackend,
  KernelConfig,
  KernelFunc,
  NamedAttrMap,
  NamedTensorInfoMap,
  TensorInfo,
} from '@tensorflow/tfjs-core';
// The package registers its own kernels when imported, so importing it before registering ours
// makes sure that a later import cannot overwrite them.
import '@tensorflow/tfjs-backend-wasm';

import { simdFilterGradient } from './filter-gradient.js';

export const WASM_BACKEND = 'wasm';

type Shape4D = [number, number, number, number];
type ExplicitPadding = [[number, number], [number, number], [number, number], [number, number]];

/**
 * The part of a range [start, end) along one spatial axis that lies inside the tensor, and the
 * zeros that stand in for the parts of the range past either edge.
 */
interface AxisWindow {
  begin: number;
  size: number;
  padBefore: number;
  padAfter: number;
}

function axisWindow(start: number, end: number, length: number): AxisWindow {
  const begin = Math.max(0, start);
  const stop = Math.min(length, end);
  return {
    begin: Math.min(begin, length),
    size: Math.max(0, stop - begin),
    padBefore: Math.max(0, -start),
    padAfter: Math.max(0, end - Math.max(length, start)),
  };
}

/**
 * Cuts `x` (NHWC) to the given height and width windows. The zero padding that the windows need
 * is returned rather than applied, so that the convolution that follows pads for free.
 */
function cropToWindows(x: tf.Tensor4D, rows: AxisWindow, cols: AxisWindow): { cropped: tf.Tensor4D; pad: ExplicitPadding } {
  const [batch, height, width, channels] = x.shape;
  const whole = rows.begin === 0 && rows.size === height && cols.begin === 0 && cols.size === width;
  const cropped = whole ? x : tf.slice(x, [0, rows.begin, cols.begin, 0], [batch, rows.size, cols.size, channels]);
  const pad: ExplicitPadding = [
    [0, 0],
    [rows.padBefore, rows.padAfter],
    [cols.padBefore, cols.padAfter],
    [0, 0],
  ];
  return { cropped, pad };
}

/**
 * Wraps a kernel input as a Tensor so public ops accept it. The engine passes the Tensor objects
 * that the op received, so the wrapper is only needed when another kernel calls this one with a
 * bare TensorInfo. The wrapper shares the data and is disposed by the surrounding tidy.
 */
function asTensor<R extends tf.Rank>(info: TensorInfo): tf.Tensor<R> {
  if (info instanceof tf.Tensor) return info as tf.Tensor<R>;
  return tf.engine().makeTensorFromTensorInfo(info) as tf.Tensor<R>;
}

function requireInput(kernelName: string, inputs: NamedTensorInfoMap, name: string): TensorInfo {
  const info = inputs[name];
  if (info === undefined) throw new Error(`${kernelName} on the wasm backend is missing its input '${name}'`);
  return info;
}

function requireChannelsLast(kernelName: string, dataFormat: string | undefined): void {
  if (dataFormat !== undefined && dataFormat !== 'NHWC') {
    throw new Error(
      `${kernelName} on the wasm backend supports dataFormat 'NHWC' only, but received '${dataFormat}'. ` +
        `Transpose the tensors to NHWC first. The wasm forward Conv2D has the same limit.`,
    );
  }
}

function requireFloat32(kernelName: string, ...infos: TensorInfo[]): void {
  for (const info of infos) {
    if (info.dtype !== 'float32') {
      throw new Error(`${kernelName} on the wasm backend supports float32 tensors only, but received ${info.dtype}`);
    }
  }
}

/** The arguments that the engine passes to a kernel function. */
interface KernelArgs {
  inputs: NamedTensorInfoMap;
  backend: {};
  attrs?: NamedAttrMap;
}

/** The methods of tfjs-backend-wasm's BackendWasm (4.22.0) that its own kernels use to write outputs. */
export interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  /** A view of the tensor's memory in the wasm heap. Growing the heap detaches earlier views. */
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/**
 * Returns a convolution gradient kernel's two inputs, after checking that both are there, that
 * the data is NHWC and that both are float32.
 */
function requireConvGradientInputs(kernelName: string, inputs: NamedTensorInfoMap, names: readonly [string, string], dataFormat: string | undefined): [TensorInfo, TensorInfo] {
  const first = requireInput(kernelName, inputs, names[0]);
  const second = requireInput(kernelName, inputs, names[1]);
  requireChannelsLast(kernelName, dataFormat);
  requireFloat32(kernelName, first, second);
  return [first, second];
}

/**
 * Computes the filter gradient with darkroom's SIMD kernel (kernels/filter-gradient.c), at about
 * twice the speed of the route through the forward convolution below, whose huge filter and
 * few channels suit XNNPACK badly. That route remains for runtimes without WebAssembly SIMD and
 * for tensors past the kernel's 2 GB of memory.
 */
function conv2DBackpropFilterKernel({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as Conv2DBackpropFilterAttrs;
  const [xInfo, dyInfo] = requireConvGradientInputs(Conv2DBackpropFilter, inputs, ['x', 'dy'], dataFormat);

  const info = backend_util.computeConv2DInfo(xInfo.shape as Shape4D, filterShape, strides, 1, pad, dimRoundingMode, false, 'channelsLast');
  const wasm = backend as WasmBackend;
  // Both inputs are float32, as checked above.
  const values = filterGradientRoute === 'simd' ? simdFilterGradient(wasm.typedArrayFromHeap(xInfo) as Float32Array, wasm.typedArrayFromHeap(dyInfo) as Float32Array, info) : undefined;
  if (values === undefined) return filterGradientByConvolution(xInfo, dyInfo, info, filterShape);

  // The output is made after the kernel ran, because making it may grow the backend's memory and
  // detach the views of x and dy.
  const output = wasm.makeOutput([...filterShape], 'float32');
  wasm.typedArrayFromHeap(output).set(values);
  return output;
}

/** The route of the filter gradient on the wasm backend: the SIMD kernel, or the forward convolution. */
export type FilterGradientRoute = 'simd' | 'convolution';

let filterGradientRoute: FilterGradientRoute = 'simd';

/**
 * Chooses the filter gradient's route for this thread, for tests and benchmarks that compare
 * the two, and returns the previous choice. Training code leaves it at 'simd'.
 */
export function useFilterGradientRoute(route: FilterGradientRoute): FilterGradientRoute {
  const previous = filterGradientRoute;
  filterGradientRoute = route;
  return previous;
}

/**
 * Computes the filter gradient as one forward convolution, so XNNPACK does the work.
 *
 * dW[i, j, ci, co] = sum over (b, y, x) of xPadded[b, y*sh + i, x*sw + j, ci] * dy[b, y, x, co].
 * Read with the input channels as the batch and the batch as the channels, that is a
 * convolution of x^T [ci, H, W, n] with dy^T [oh, ow, n, co] as the filter, dilated by the
 * stride. Its output [ci, kh, kw, co] needs one small transpose.
 *
 * An im2col route through kh*kw slices and matMul calls was 2x slower at stride 1 and far slower
 * at stride 2 (n16 64x64 32->32 3x3 on a 2-core x86 machine), because the wasm backend has no
 * fast strided slice, and its matMul is fast only without transposed operands.
 */
function filterGradientByConvolution(
  xInfo: TensorInfo,
  dyInfo: TensorInfo,
  info: backend_util.Conv2DInfo,
  filterShape: [number, number, number, number],
): TensorInfo {
  const { batchSize, inHeight, inWidth, inChannels, outChannels, filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const [, outHeight, outWidth] = dyInfo.shape as Shape4D;

  return tf.tidy(() => {
    const x = asTensor<tf.Rank.R4>(xInfo);
    const dy = asTensor<tf.Rank.R4>(dyInfo);

    const noPadding = info.padInfo.top === 0 && info.padInfo.bottom === 0 && info.padInfo.left === 0 && info.padInfo.right === 0;
    if (filterHeight === 1 && filterWidth === 1 && strideHeight === 1 && strideWidth === 1 && noPadding) {
      // A 1x1 filter gradient is x^T dy over all pixels, and one plain matMul beats the convolution.
      const pixels = batchSize * inHeight * inWidth;
      const xT = tf.transpose(tf.reshape(x, [pixels, inChannels]));
      const product = tf.matMul(xT, tf.reshape(dy, [pixels, outChannels]));
      return tf.reshape(product, filterShape);
    }

    // The rows and columns of x that the forward pass read, including its zero padding.
    const rows = axisWindow(-info.padInfo.top, -info.padInfo.top + filterHeight + (outHeight - 1) * strideHeight, inHeight);
    const cols = axisWindow(-info.padInfo.left, -info.padInfo.left + filterWidth + (outWidth - 1) * strideWidth, inWidth);
    // No forward window touches x, which takes explicit padding and a stride larger than the input.
    if (rows.size === 0 || cols.size === 0) return tf.zeros(filterShape);
    const { cropped, pad: explicitPad } = cropToWindows(x, rows, cols);

    const xT = tf.transpose(cropped, [3, 1, 2, 0]);
    const dyT = tf.transpose(dy, [1, 2, 0, 3]);
    const gradient = tf.conv2d(xT, dyT, 1, explicitPad, 'NHWC', [strideHeight, strideWidth]);
    return tf.transpose(gradient, [1, 2, 0, 3]);
  });
}

/**
 * Geometry of the input gradient along one spatial axis, split by stride phase.
 *
 * With p the leading padding, dx[i] = sum over t of dy[m - t] * w[r + t*s], where
 * m = floor((i + p) / s) and r = (i + p) mod s. So each phase r is a stride-1 correlation of dy
 * with `taps` filter taps, over the blocks m = firstBlock..lastBlock.
 */
interface PhasePlan {
  stride: number;
  taps: number;
  blocks: number;
  dyWindow: AxisWindow;
  cropStart: number;
}

function planPhases(inputLength: number, outputLength: number, filterLength: number, stride: number, padBefore: number): PhasePlan {
  const taps = Math.ceil(filterLength / stride);
  const firstBlock = Math.floor(padBefore / stride);
  const lastBlock = Math.floor((inputLength - 1 + padBefore) / stride);
  return {
    stride,
    taps,
    blocks: lastBlock - firstBlock + 1,
    dyWindow: axisWindow(firstBlock - taps + 1, lastBlock + 1, outputLength),
    cropStart: padBefore - firstBlock * stride,
  };
}

/**
 * Rearranges a filter [kh, kw, ci, co] into the filter of the phase convolution,
 * [tapsH, tapsW, co, strideH * strideW * ci]. Output channel (rh * strideW + rw) * ci + c
 * contains phase (rh, rw) of input channel c, with its taps in reverse order. Taps that fall
 * past the filter edge stay zero.
 */
function phaseFilter(filter: Float32Array, filterShape: Shape4D, rowsPlan: PhasePlan, colsPlan: PhasePlan): tf.Tensor4D {
  const [filterHeight, filterWidth, inChannels, outChannels] = filterShape;
  const { taps: tapsH, stride: strideH } = rowsPlan;
  const { taps: tapsW, stride: strideW } = colsPlan;
  const phaseChannels = strideH * strideW * inChannels;
  const result = new Float32Array(tapsH * tapsW * outChannels * phaseChannels);

  for (let th = 0; th < tapsH; th++) {
    for (let rh = 0; rh < strideH; rh++) {
      const fy = rh + (tapsH - 1 - th) * strideH;
      if (fy >= filterHeight) continue;
      for (let tw = 0; tw < tapsW; tw++) {
        for (let rw = 0; rw < strideW; rw++) {
          const fx = rw + (tapsW - 1 - tw) * strideW;
          if (fx >= filterWidth) continue;
          const phaseOffset = (rh * strideW + rw) * inChannels;
          for (let ci = 0; ci < inChannels; ci++) {
            const source = ((fy * filterWidth + fx) * inChannels + ci) * outChannels;
            for (let co = 0; co < outChannels; co++) {
              result[((th * tapsW + tw) * outChannels + co) * phaseChannels + phaseOffset + ci] = filter[source + co];
            }
          }
        }
      }
    }
  }
  return tf.tensor4d(result, [tapsH, tapsW, outChannels, phaseChannels]);
}

/**
 * Computes the input gradient (the conv2dTranspose forward pass) as one forward convolution.
 *
 * The textbook route convolves dy, upsampled with zeros between its pixels, with the rotated
 * filter, and so spends (sh * sw - 1) / (sh * sw) of its multiplies on zeros. Here a single
 * convolution at dy's resolution computes every stride phase as extra output channels, which
 * are then interleaved into full resolution. For a 3x3 filter at stride 2 this does 16 multiplies
 * per output block where the direct method does 9, and zero insertion does 36.
 */
function conv2DBackpropInputKernel({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as Conv2DBackpropInputAttrs;
  const [dyInfo, filterInfo] = requireConvGradientInputs(Conv2DBackpropInput, inputs, ['dy', 'filter'], dataFormat);

  const filterShape = filterInfo.shape as Shape4D;
  const info = backend_util.computeConv2DInfo(inputShape, filterShape, strides, 1, pad, dimRoundingMode, false, 'channelsLast');
  const { batchSize, inHeight, inWidth, inChannels, filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const [, outHeight, outWidth] = dyInfo.shape;

  const rowsPlan = planPhases(inHeight, outHeight, filterHeight, strideHeight, info.padInfo.top);
  const colsPlan = planPhases(inWidth, outWidth, filterWidth, strideWidth, info.padInfo.left);
  const filterValues = (backend as KernelBackend).readSync(filterInfo.dataId) as Float32Array;

  return tf.tidy(() => {
    // As in the filter gradient, only a stride larger than the input can leave x unread.
    if (rowsPlan.dyWindow.size === 0 || colsPlan.dyWindow.size === 0) return tf.zeros(inputShape);
    const dy = asTensor<tf.Rank.R4>(dyInfo);
    const filter = phaseFilter(filterValues, filterShape, rowsPlan, colsPlan);
    const { cropped, pad: explicitPad } = cropToWindows(dy, rowsPlan.dyWindow, colsPlan.dyWindow);
    let dx = tf.conv2d(cropped, filter, 1, explicitPad);

    if (strideHeight > 1 || strideWidth > 1) {
      // [n, blocksH, blocksW, (rh, rw, c)] -> [n, blocksH, rh, blocksW, rw, c], kept at rank 4
      // because the wasm Transpose is several times slower at rank 6.
      const merged = tf.reshape(dx, [batchSize * rowsPlan.blocks, colsPlan.blocks, strideHeight, strideWidth * inChannels]);
      dx = tf.reshape(tf.transpose(merged, [0, 2, 1, 3]), [
        batchSize,
        rowsPlan.blocks * strideHeight,
        colsPlan.blocks * strideWidth,
        inChannels,
      ]);
    }

    const [, fullHeight, fullWidth] = dx.shape;
    if (rowsPlan.cropStart === 0 && colsPlan.cropStart === 0 && fullHeight === inHeight && fullWidth === inWidth) return dx;
    return tf.slice(dx, [0, rowsPlan.cropStart, colsPlan.cropStart, 0], [batchSize, inHeight, inWidth, inChannels]);
  });
}

function requireNoDilation(kernelName: string, dilations: number | [number, number] | undefined): void {
  const [dilationHeight, dilationWidth] = typeof dilations === 'number' ? [dilations, dilations] : (dilations ?? [1, 1]);
  if (dilationHeight !== 1 || dilationWidth !== 1) {
    throw new Error(
      `${kernelName} on the wasm backend supports dilations of 1 only, but received [${dilationHeight}, ${dilationWidth}]`,
    );
  }
}

/**
 * Returns a [1, 1, channels, channels, 1] mask that is 1 where the two channel axes agree. It
 * turns a depthwise filter [kh, kw, ci, m] into the block-diagonal conv2d filter
 * [kh, kw, ci, ci * m] that computes the same thing, and picks those blocks back out of a conv2d
 * filter gradient.
 */
function channelDiagonal(channels: number): tf.Tensor {
  return tf.reshape(tf.eye(channels), [1, 1, channels, channels, 1]);
}

/*
 * The depthwise gradients run as the conv2d gradients of the equivalent block-diagonal filter,
 * because the wasm backend has no depthwise gradient kernels and the conv2d ones above are fast.
 * NOTE: that does inChannels times the necessary multiplies. For n16 64x64 32 channels 3x3 on a
 * 2-core x86 machine, the forward depthwise conv took 18 ms, the input gradient 82 ms and the
 * filter gradient 197 ms, and the gap widens with the channel count.
 */

function depthwiseBackpropInputKernel({ inputs, attrs }: { inputs: NamedTensorInfoMap; attrs?: NamedAttrMap }): TensorInfo {
  const { strides, dilations, pad, dimRoundingMode, inputShape } = attrs as unknown as DepthwiseConv2dNativeBackpropInputAttrs;
  const dyInfo = requireInput(DepthwiseConv2dNativeBackpropInput, inputs, 'dy');
  const filterInfo = requireInput(DepthwiseConv2dNativeBackpropInput, inputs, 'filter');
  requireNoDilation(DepthwiseConv2dNativeBackpropInput, dilations);
  requireFloat32(DepthwiseConv2dNativeBackpropInput, dyInfo, filterInfo);
  const [filterHeight, filterWidth, inChannels, multiplier] = filterInfo.shape as Shape4D;
  const conv2dAttrs = { strides, pad, dataFormat: 'NHWC', dimRoundingMode, inputShape } as unknown as NamedAttrMap;

  return tf.tidy(() => {
    const depthwise = tf.reshape(asTensor(filterInfo), [filterHeight, filterWidth, inChannels, 1, multiplier]);
    const blocks = tf.mul(depthwise, channelDiagonal(inChannels));
    const filter = tf.reshape(blocks, [filterHeight, filterWidth, inChannels, inChannels * multiplier]);
    return tf.engine().runKernel(Conv2DBackpropInput, { dy: asTensor(dyInfo), filter }, conv2dAttrs) as tf.Tensor;
  });
}

function depthwiseBackpropFilterKernel({ inputs, attrs }: { inputs: NamedTensorInfoMap; attrs?: NamedAttrMap }): TensorInfo {
  const { strides, dilations, pad, dimRoundingMode, filterShape } = attrs as unknown as DepthwiseConv2dNativeBackpropFilterAttrs;
  const xInfo = requireInput(DepthwiseConv2dNativeBackpropFilter, inputs, 'x');
  const dyInfo = requireInput(DepthwiseConv2dNativeBackpropFilter, inputs, 'dy');
  requireNoDilation(DepthwiseConv2dNativeBackpropFilter, dilations);
  requireFloat32(DepthwiseConv2dNativeBackpropFilter, xInfo, dyInfo);
  const [filterHeight, filterWidth, inChannels, multiplier] = filterShape;
  const fullShape = [filterHeight, filterWidth, inChannels, inChannels * multiplier];
  const conv2dAttrs = { strides, pad, dataFormat: 'NHWC', dimRoundingMode, filterShape: fullShape } as unknown as NamedAttrMap;

  return tf.tidy(() => {
    const full = tf.engine().runKernel(Conv2DBackpropFilter, { x: asTensor(xInfo), dy: asTensor(dyInfo) }, conv2dAttrs) as tf.Tensor;
    const blocks = tf.reshape(full, [filterHeight, filterWidth, inChannels, inChannels, multiplier]);
    return tf.sum(tf.mul(blocks, channelDiagonal(inChannels)), 3);
  });
}

const KERNELS: ReadonlyArray<{ kernelName: string; kernelFunc: KernelFunc }> = [
  { kernelName: Conv2DBackpropFilter, kernelFunc: conv2DBackpropFilterKernel as KernelFunc },
  { kernelName: Conv2DBackpropInput, kernelFunc: conv2DBackpropInputKernel as KernelFunc },
  { kernelName: DepthwiseConv2dNativeBackpropFilter, kernelFunc: depthwiseBackpropFilterKernel as KernelFunc },
  { kernelName: DepthwiseConv2dNativeBackpropInput, kernelFunc: depthwiseBackpropInputKernel as KernelFunc },
];

/** Kernels that tfjs-backend-wasm registered before this module replaced them, kept for benchmarks. */
const replacedKernels = new Map<string, KernelConfig>();

/** Names of the kernels that `registerWasmTrainingKernels` provides for the wasm backend. */
export const WASM_TRAINING_KERNELS: readonly string[] = Object.freeze(KERNELS.map((kernel) => kernel.kernelName));

/**
 * Registers the convolution gradient kernels for the wasm backend, replacing any kernel of the
 * same name. Calling it again is a no-op. tfjs-core keeps its kernel registry on globalThis, so
 * this applies to the whole thread, and each worker thread has to call it for itself.
 */
export function registerWasmTrainingKernels(): void {
  for (const { kernelName, kernelFunc } of KERNELS) {
    const existing = getKernel(kernelName, WASM_BACKEND);
    if (existing?.kernelFunc === kernelFunc) continue;
    if (existing != null) {
      if (!replacedKernels.has(kernelName)) replacedKernels.set(kernelName, existing);
      unregisterKernel(kernelName, WASM_BACKEND);
    }
    registerKernel({ kernelName, backendName: WASM_BACKEND, kernelFunc });
  }
}

/**
 * Returns the wasm kernel that `registerWasmTrainingKernels` replaced under this name, or
 * undefined if there was none. Its setupFunc, if any, must run before its kernelFunc, because the
 * wasm backend only sets up kernels that are registered when it starts.
 */
export function replacedWasmKernel(kernelName: string): KernelConfig | undefined {
  return replacedKernels.get(kernelName);
}

/**
 * The convolution filter gradient compiled from kernels/filter-gradient.c to WebAssembly SIMD.
 *
 * The module has its own memory, so each call copies x and dy into it and the result out, because
 * sharing the wasm backend's memory would need its Emscripten internals. The memory grows to the
 * largest call and keeps that size, since wasm memory cannot shrink: about 47 MB for the
 * colorizer's bins head at the default batch.
 */
import type { backend_util } from '@tensorflow/tfjs-core';

import { FILTER_GRADIENT_WASM } from './kernels/filter-gradient-wasm.js';

const PAGE_BYTES = 65536;
// Offsets are signed 32-bit integers inside the module.
const MAX_MODULE_BYTES = 2 ** 31 - PAGE_BYTES;

type FilterGradientExport = (
  x: number,
  dy: number,
  dw: number,
  batch: number,
  inHeight: number,
  inWidth: number,
  inChannels: number,
  outHeight: number,
  outWidth: number,
  outChannels: number,
  filterHeight: number,
  filterWidth: number,
  strideHeight: number,
  strideWidth: number,
  padTop: number,
  padLeft: number,
) => void;

interface KernelModule {
  memory: WebAssembly.Memory;
  run: FilterGradientExport;
  /** First byte past the module's stack, 16-byte aligned: where the buffers start. */
  base: number;
}

/** The geometry that the kernel reads from the forward convolution's Conv2DInfo. */
export type FilterGradientGeometry = Pick<
  backend_util.Conv2DInfo,
  | 'batchSize'
  | 'inHeight'
  | 'inWidth'
  | 'inChannels'
  | 'outHeight'
  | 'outWidth'
  | 'outChannels'
  | 'filterHeight'
  | 'filterWidth'
  | 'strideHeight'
  | 'strideWidth'
  | 'padInfo'
>;

let loaded: KernelModule | null | undefined;

function instantiate(): KernelModule | null {
  try {
    // Synchronous compilation is fine for a module of a few kilobytes, and kernels are synchronous.
    const module = new WebAssembly.Module(Buffer.from(FILTER_GRADIENT_WASM, 'base64'));
    const exports = new WebAssembly.Instance(module).exports as {
      memory: WebAssembly.Memory;
      filter_gradient: FilterGradientExport;
      __heap_base: WebAssembly.Global;
    };
    const heapBase = exports.__heap_base.value as number;
    return { memory: exports.memory, run: exports.filter_gradient, base: (heapBase + 15) & ~15 };
  } catch {
    // A runtime without WebAssembly SIMD rejects the module, so the caller takes its fallback.
    return null;
  }
}

function kernelModule(): KernelModule | null {
  if (loaded === undefined) loaded = instantiate();
  return loaded;
}

/** Grows the module's memory, and returns false when the process cannot spare that much. */
function grow(memory: WebAssembly.Memory, pages: number): boolean {
  try {
    memory.grow(pages);
    return true;
  } catch {
    return false;
  }
}

/** True when this runtime compiles the SIMD module. */
export function simdFilterGradientAvailable(): boolean {
  return kernelModule() !== null;
}

/**
 * Computes dw [filterHeight, filterWidth, inChannels, outChannels] for NHWC `x` and `dy`.
 * Returns undefined when the module cannot run here, or the tensors do not fit in its 2 GB of
 * addressable memory or in what the process can still allocate, so that the caller can take
 * another route.
 */
export function simdFilterGradient(x: Float32Array, dy: Float32Array, geometry: FilterGradientGeometry): Float32Array | undefined {
  const kernel = kernelModule();
  if (kernel === null) return undefined;

  const g = geometry;
  const outputLength = g.filterHeight * g.filterWidth * g.inChannels * g.outChannels;
  const xOffset = kernel.base;
  const dyOffset = xOffset + x.length * 4;
  const dwOffset = dyOffset + dy.length * 4;
  const end = dwOffset + outputLength * 4;
  if (end > MAX_MODULE_BYTES) return undefined;
  const shortBy = end - kernel.memory.buffer.byteLength;
  if (shortBy > 0 && !grow(kernel.memory, Math.ceil(shortBy / PAGE_BYTES))) return undefined;

  // Views are taken after growing, which detaches the old buffer.
  const buffer = kernel.memory.buffer;
  new Float32Array(buffer, xOffset, x.length).set(x);
  new Float32Array(buffer, dyOffset, dy.length).set(dy);
  kernel.run(
    xOffset,
    dyOffset,
    dwOffset,
    g.batchSize,
    g.inHeight,
    g.inWidth,
    g.inChannels,
    g.outHeight,
    g.outWidth,
    g.outChannels,
    g.filterHeight,
    g.filterWidth,
    g.strideHeight,
    g.strideWidth,
    g.padInfo.top,
    g.padInfo.left,
  );
  return new Float32Array(buffer, dwOffset, outputLength).slice();
}

import * as tf from '@tensorflow/tfjs-core';
import {
  backend_util,
  Conv2DBackpropFilter,
  Conv2DBackpropInput,
  DepthwiseConv2dNativeBackpropFilter,
  DepthwiseConv2dNativeBackpropInput,
  getKernel,
} from '@tensorflow/tfjs-core';
import type { NamedAttrMap } from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../src/backend/select.js';
import { simdFilterGradient, simdFilterGradientAvailable } from '../src/backend/filter-gradient.js';
import { registerWasmTrainingKernels, useFilterGradientRoute, WASM_TRAINING_KERNELS } from '../src/backend/wasm-kernels.js';
import type { FilterGradientRoute } from '../src/backend/wasm-kernels.js';
import { onBothBackends, seededTensor, seededValues } from './helpers/backends.js';

type Pad = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];

interface ConvCase {
  label: string;
  batch: number;
  height: number;
  width: number;
  inChannels: number;
  outChannels: number;
  filterHeight: number;
  filterWidth: number;
  strides: [number, number];
  pad: Pad;
}

/** Returns max |actual - expected| and the bound it must stay within: 1e-4 * max |expected| + 1e-5. */
function compare(actual: tf.TypedArray, expected: tf.TypedArray): { maxDiff: number; bound: number } {
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(actual[i]! - expected[i]!));
    maxRef = Math.max(maxRef, Math.abs(expected[i]!));
  }
  return { maxDiff, bound: 1e-4 * maxRef + 1e-5 };
}

function expectSameOutputs({ wasm, cpu }: { wasm: Outputs; cpu: Outputs }): void {
  expect(wasm.shapes).toEqual(cpu.shapes);
  for (let i = 0; i < cpu.values.length; i++) {
    const { maxDiff, bound } = compare(wasm.values[i]!, cpu.values[i]!);
    expect(maxDiff, `output ${i}: max abs diff ${maxDiff} exceeds ${bound}`).toBeLessThanOrEqual(bound);
  }
}

function forwardOutputShape(c: ConvCase): [number, number, number, number] {
  const info = backend_util.computeConv2DInfo(
    [c.batch, c.height, c.width, c.inChannels],
    [c.filterHeight, c.filterWidth, c.inChannels, c.outChannels],
    c.strides,
    1,
    c.pad,
  );
  return info.outShape;
}

function describeCase(c: Omit<ConvCase, 'label'>): string {
  const pad = typeof c.pad === 'object' ? JSON.stringify(c.pad.slice(1, 3)) : String(c.pad);
  return (
    `n${c.batch} ${c.height}x${c.width} ${c.inChannels}->${c.outChannels} ` +
    `k${c.filterHeight}x${c.filterWidth} s${c.strides.join('x')} ${pad}`
  );
}

function makeCase(c: Omit<ConvCase, 'label'>): ConvCase {
  return { label: describeCase(c), ...c };
}

/** Returns the grid of cases that the kernels must match: odd and even sizes, channel counts, filter shapes. */
function gridCases(): ConvCase[] {
  const cases: ConvCase[] = [];
  const sizes: Array<[number, number]> = [
    [5, 5],
    [8, 6],
    [7, 10],
  ];
  const channels: Array<[number, number]> = [
    [1, 3],
    [3, 8],
    [8, 1],
  ];
  const filters: Array<[number, number]> = [
    [1, 1],
    [3, 3],
    [5, 5],
    [3, 1],
  ];
  for (const [height, width] of sizes) {
    for (const batch of [1, 3]) {
      for (const [inChannels, outChannels] of channels) {
        for (const [filterHeight, filterWidth] of filters) {
          for (const stride of [1, 2]) {
            for (const pad of ['same', 'valid'] as const) {
              cases.push(
                makeCase({ batch, height, width, inChannels, outChannels, filterHeight, filterWidth, strides: [stride, stride], pad }),
              );
            }
          }
        }
      }
    }
  }
  return cases;
}

/** Geometry that the grid misses: explicit and numeric padding, even filters, uneven strides. */
const EDGE_CASES: ConvCase[] = [
  makeCase({ batch: 2, height: 9, width: 6, inChannels: 3, outChannels: 4, filterHeight: 3, filterWidth: 3, strides: [1, 1], pad: 1 }),
  makeCase({ batch: 2, height: 9, width: 6, inChannels: 3, outChannels: 4, filterHeight: 3, filterWidth: 3, strides: [2, 2], pad: 2 }),
  makeCase({ batch: 1, height: 8, width: 8, inChannels: 2, outChannels: 2, filterHeight: 4, filterWidth: 4, strides: [2, 2], pad: 'same' }),
  makeCase({ batch: 1, height: 7, width: 7, inChannels: 2, outChannels: 3, filterHeight: 2, filterWidth: 2, strides: [2, 2], pad: 'valid' }),
  makeCase({ batch: 2, height: 10, width: 9, inChannels: 3, outChannels: 2, filterHeight: 3, filterWidth: 3, strides: [3, 3], pad: 'same' }),
  makeCase({ batch: 2, height: 10, width: 9, inChannels: 3, outChannels: 2, filterHeight: 3, filterWidth: 5, strides: [2, 1], pad: 'same' }),
  makeCase({ batch: 1, height: 9, width: 9, inChannels: 4, outChannels: 4, filterHeight: 1, filterWidth: 1, strides: [2, 2], pad: 'same' }),
  makeCase({
    batch: 2,
    height: 6,
    width: 7,
    inChannels: 3,
    outChannels: 2,
    filterHeight: 3,
    filterWidth: 3,
    strides: [1, 2],
    pad: [
      [0, 0],
      [4, 1],
      [0, 3],
      [0, 0],
    ],
  }),
  // No forward window reaches x here, so both gradients are all zeros.
  makeCase({
    batch: 1,
    height: 1,
    width: 1,
    inChannels: 2,
    outChannels: 2,
    filterHeight: 1,
    filterWidth: 1,
    strides: [3, 3],
    pad: [
      [0, 0],
      [2, 0],
      [2, 0],
      [0, 0],
    ],
  }),
];

const CASES = [...gridCases(), ...EDGE_CASES];

function inputGradient(c: ConvCase): () => tf.Tensor {
  const dyShape = forwardOutputShape(c);
  return () =>
    tf.engine().runKernel(
      Conv2DBackpropInput,
      { dy: seededTensor(dyShape, 3), filter: seededTensor([c.filterHeight, c.filterWidth, c.inChannels, c.outChannels], 2) },
      { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', inputShape: [c.batch, c.height, c.width, c.inChannels] } as unknown as NamedAttrMap,
    ) as tf.Tensor;
}

function filterGradient(c: ConvCase): () => tf.Tensor {
  const dyShape = forwardOutputShape(c);
  return () =>
    tf.engine().runKernel(
      Conv2DBackpropFilter,
      { x: seededTensor([c.batch, c.height, c.width, c.inChannels], 1), dy: seededTensor(dyShape, 3) },
      {
        strides: c.strides,
        pad: c.pad,
        dataFormat: 'NHWC',
        filterShape: [c.filterHeight, c.filterWidth, c.inChannels, c.outChannels],
      } as unknown as NamedAttrMap,
    ) as tf.Tensor;
}

beforeAll(async () => {
  await initBackend('wasm');
});

describe('wasm Conv2DBackpropInput', () => {
  it.each(CASES)('matches cpu: $label', async (c) => {
    expectSameOutputs(await onBothBackends(inputGradient(c)));
  });

  it('conv2dTranspose matches cpu', async () => {
    const outputs = await onBothBackends(() =>
      tf.conv2dTranspose(seededTensor([2, 5, 6, 4], 1) as tf.Tensor4D, seededTensor([3, 3, 3, 4], 2) as tf.Tensor4D, [2, 10, 12, 3], 2, 'same'),
    );
    expectSameOutputs(outputs);
  });
});

/**
 * Shapes for the SIMD kernel's blocking: blocks of 4 input channels and 8 or 4 output channels,
 * the channels past them, and enough rows to need several row blocks.
 */
const SIMD_BLOCK_CASES: ConvCase[] = [
  makeCase({ batch: 2, height: 40, width: 40, inChannels: 9, outChannels: 14, filterHeight: 3, filterWidth: 3, strides: [1, 1], pad: 'same' }),
  makeCase({ batch: 3, height: 33, width: 31, inChannels: 8, outChannels: 20, filterHeight: 3, filterWidth: 3, strides: [2, 2], pad: 'same' }),
  makeCase({ batch: 2, height: 24, width: 24, inChannels: 12, outChannels: 37, filterHeight: 1, filterWidth: 1, strides: [1, 1], pad: 'valid' }),
  makeCase({ batch: 1, height: 70, width: 66, inChannels: 4, outChannels: 8, filterHeight: 5, filterWidth: 3, strides: [1, 2], pad: 'valid' }),
];

describe('wasm Conv2DBackpropFilter', () => {
  it('runs the SIMD kernel on this Node', () => {
    expect(simdFilterGradientAvailable()).toBe(true);
  });

  it('declines tensors past 2 GB', () => {
    // Only the lengths are read before the size check, so no 2 GB array is needed.
    const huge = { length: 2 ** 29 } as Float32Array;
    const geometry = {
      batchSize: 1,
      inHeight: 2 ** 13,
      inWidth: 2 ** 16,
      inChannels: 1,
      outHeight: 2 ** 13,
      outWidth: 2 ** 16,
      outChannels: 1,
      filterHeight: 1,
      filterWidth: 1,
      strideHeight: 1,
      strideWidth: 1,
      padInfo: { top: 0, left: 0, right: 0, bottom: 0, type: 'VALID' as const },
    };
    expect(simdFilterGradient(huge, huge, geometry)).toBeUndefined();
  });

  it.each([...CASES, ...SIMD_BLOCK_CASES])('matches cpu: $label', async (c) => {
    expectSameOutputs(await onBothBackends(filterGradient(c)));
  });

  describe('through the forward convolution', () => {
    let previous: FilterGradientRoute;
    beforeAll(() => {
      previous = useFilterGradientRoute('convolution');
    });
    afterAll(() => {
      useFilterGradientRoute(previous);
    });

    it.each([...EDGE_CASES, ...SIMD_BLOCK_CASES])('matches cpu: $label', async (c) => {
      expectSameOutputs(await onBothBackends(filterGradient(c)));
    });
  });

  it('rejects NCHW data', () => {
    const x = tf.zeros([1, 2, 5, 5]);
    const dy = tf.zeros([1, 2, 5, 5]);
    const attrs = { strides: 1, pad: 'same', dataFormat: 'NCHW', filterShape: [3, 3, 2, 2] } as unknown as NamedAttrMap;
    expect(() => tf.engine().runKernel(Conv2DBackpropFilter, { x, dy }, attrs)).toThrow(/supports dataFormat 'NHWC' only, but received 'NCHW'/);
    tf.dispose([x, dy]);
  });
});

describe('wasm conv2d gradients', () => {
  it.each([
    makeCase({ batch: 3, height: 9, width: 8, inChannels: 3, outChannels: 5, filterHeight: 3, filterWidth: 3, strides: [2, 2], pad: 'same' }),
    makeCase({ batch: 2, height: 7, width: 7, inChannels: 4, outChannels: 2, filterHeight: 5, filterWidth: 3, strides: [1, 1], pad: 'valid' }),
  ])('tf.grads match cpu: $label', async (c) => {
    const outputs = await onBothBackends(() => {
      const x = seededTensor([c.batch, c.height, c.width, c.inChannels], 1) as tf.Tensor4D;
      const filter = seededTensor([c.filterHeight, c.filterWidth, c.inChannels, c.outChannels], 2) as tf.Tensor4D;
      const weights = seededTensor(forwardOutputShape(c), 3);
      const loss = (a: tf.Tensor, b: tf.Tensor) => {
        const y = tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.strides, c.pad as 'same' | 'valid');
        return tf.sum(tf.mul(y, weights));
      };
      return tf.grads(loss)([x, filter]);
    });
    expectSameOutputs(outputs);
  });

  it('leaves no tensors behind', () => {
    const x = seededTensor([2, 8, 8, 3], 1);
    const filter = seededTensor([3, 3, 3, 4], 2);
    const dy = seededTensor([2, 4, 4, 4], 3);
    const common = { strides: 2, pad: 'same', dataFormat: 'NHWC' };
    const inputAttrs = { ...common, inputShape: x.shape } as unknown as NamedAttrMap;
    const filterAttrs = { ...common, filterShape: filter.shape } as unknown as NamedAttrMap;
    // No tidy here, because it would also dispose whatever a kernel forgot to.
    const runBoth = () => {
      tf.dispose(tf.engine().runKernel(Conv2DBackpropInput, { dy, filter }, inputAttrs) as tf.Tensor);
      tf.dispose(tf.engine().runKernel(Conv2DBackpropFilter, { x, dy }, filterAttrs) as tf.Tensor);
    };

    runBoth();
    const tensorsBefore = tf.memory().numTensors;
    const dataIdsBefore = tf.backend().numDataIds();
    for (let i = 0; i < 20; i++) runBoth();
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    expect(tf.backend().numDataIds()).toBe(dataIdsBefore);
    tf.dispose([x, filter, dy]);
  });
});

/** Returns the depthwise cases, in which `outChannels` is the channel multiplier. */
function depthwiseCases(): ConvCase[] {
  const cases: ConvCase[] = [];
  for (const [height, width, batch] of [
    [5, 5, 1],
    [8, 7, 3],
  ] as const) {
    for (const [inChannels, multiplier] of [
      [1, 1],
      [3, 2],
      [4, 1],
    ] as const) {
      for (const [filterHeight, filterWidth] of [
        [1, 1],
        [3, 3],
        [3, 1],
      ] as const) {
        for (const stride of [1, 2]) {
          for (const pad of ['same', 'valid'] as const) {
            const strides: [number, number] = [stride, stride];
            cases.push(makeCase({ batch, height, width, inChannels, outChannels: multiplier, filterHeight, filterWidth, strides, pad }));
          }
        }
      }
    }
  }
  return cases;
}

function depthwiseOutputShape(c: ConvCase): [number, number, number, number] {
  const inShape: [number, number, number, number] = [c.batch, c.height, c.width, c.inChannels];
  const filterShape: [number, number, number, number] = [c.filterHeight, c.filterWidth, c.inChannels, c.outChannels];
  return backend_util.computeConv2DInfo(inShape, filterShape, c.strides, 1, c.pad, undefined, true).outShape;
}

describe('wasm depthwise gradients', () => {
  it.each(depthwiseCases())('input gradient matches cpu: $label', async (c) => {
    const outputs = await onBothBackends(
      () =>
        tf.engine().runKernel(
          DepthwiseConv2dNativeBackpropInput,
          { dy: seededTensor(depthwiseOutputShape(c), 3), filter: seededTensor([c.filterHeight, c.filterWidth, c.inChannels, c.outChannels], 2) },
          { strides: c.strides, pad: c.pad, dilations: 1, inputShape: [c.batch, c.height, c.width, c.inChannels] } as unknown as NamedAttrMap,
        ) as tf.Tensor,
    );
    expectSameOutputs(outputs);
  });

  it.each(depthwiseCases())('filter gradient matches cpu: $label', async (c) => {
    const outputs = await onBothBackends(
      () =>
        tf.engine().runKernel(
          DepthwiseConv2dNativeBackpropFilter,
          { x: seededTensor([c.batch, c.height, c.width, c.inChannels], 1), dy: seededTensor(depthwiseOutputShape(c), 3) },
          { strides: c.strides, pad: c.pad, dilations: 1, filterShape: [c.filterHeight, c.filterWidth, c.inChannels, c.outChannels] } as unknown as NamedAttrMap,
        ) as tf.Tensor,
    );
    expectSameOutputs(outputs);
  });

  it('rejects dilations', () => {
    const dy = tf.zeros([1, 5, 5, 2]);
    const filter = tf.zeros([3, 3, 2, 1]);
    const attrs = { strides: 1, pad: 'same', dilations: 2, inputShape: [1, 5, 5, 2] } as unknown as NamedAttrMap;
    expect(() => tf.engine().runKernel(DepthwiseConv2dNativeBackpropInput, { dy, filter }, attrs)).toThrow(/supports dilations of 1 only/);
    tf.dispose([dy, filter]);
  });
});

describe('registerWasmTrainingKernels', () => {
  it('is idempotent', () => {
    const before = WASM_TRAINING_KERNELS.map((name) => getKernel(name, 'wasm')?.kernelFunc);
    registerWasmTrainingKernels();
    registerWasmTrainingKernels();
    const after = WASM_TRAINING_KERNELS.map((name) => getKernel(name, 'wasm')?.kernelFunc);
    expect(after).toEqual(before);
    expect(after.every((kernelFunc) => typeof kernelFunc === 'function')).toBe(true);
  });
});

/**
 * Builds a small U-Net-like autoencoder from the layer types of darkroom's models: strided and
 * plain conv2d with relu and leakyRelu, a stride-2 conv2dTranspose, and add and concatenate skips.
 */
function buildAutoencoder(): tfl.LayersModel {
  let seed = 10;
  const kernelInitializer = () => tfl.initializers.glorotUniform({ seed: seed++ });
  const biasInitializer = () => tfl.initializers.randomUniform({ minval: -0.1, maxval: 0.1, seed: seed++ });
  const conv = (filters: number, strides: number, activation: 'relu' | 'linear' | 'sigmoid') =>
    tfl.layers.conv2d({
      filters,
      kernelSize: 3,
      strides,
      padding: 'same',
      activation,
      kernelInitializer: kernelInitializer(),
      biasInitializer: biasInitializer(),
    });

  const input = tfl.input({ shape: [12, 10, 3] });
  const encoded1 = conv(8, 1, 'relu').apply(input) as tfl.SymbolicTensor;
  const down = conv(12, 2, 'linear').apply(encoded1) as tfl.SymbolicTensor;
  const activated = tfl.layers.leakyReLU({ alpha: 0.2 }).apply(down) as tfl.SymbolicTensor;
  const deeper = conv(12, 1, 'relu').apply(activated) as tfl.SymbolicTensor;
  const residual = tfl.layers.add().apply([activated, deeper]) as tfl.SymbolicTensor;
  const up = tfl.layers
    .conv2dTranspose({
      filters: 8,
      kernelSize: 3,
      strides: 2,
      padding: 'same',
      activation: 'relu',
      kernelInitializer: kernelInitializer(),
      biasInitializer: biasInitializer(),
    })
    .apply(residual) as tfl.SymbolicTensor;
  const skip = tfl.layers.add().apply([up, encoded1]) as tfl.SymbolicTensor;
  const merged = tfl.layers.concatenate().apply([skip, input]) as tfl.SymbolicTensor;
  const output = conv(3, 1, 'sigmoid').apply(merged) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: output });
}

describe('wasm autoencoder training', () => {
  it('gradients match cpu', async () => {
    const model = buildAutoencoder();
    const input = seededValues(2 * 12 * 10 * 3, 5).map((v) => (v + 1) / 2);
    const names = model.trainableWeights.map((weight) => weight.originalName);

    const outputs = await onBothBackends(() => {
      const x = tf.tensor4d(input, [2, 12, 10, 3]);
      const loss = () => tf.losses.meanSquaredError(x, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar;
      const { grads } = tf.variableGrads(loss);
      return names.map((name) => grads[name]!);
    });

    expect(outputs.wasm.values).toHaveLength(names.length);
    expectSameOutputs(outputs);
    model.dispose();
  });

  it('separable conv gradients match cpu', async () => {
    const input = tfl.input({ shape: [9, 8, 4] });
    const separable = tfl.layers
      .separableConv2d({
        filters: 6,
        kernelSize: 3,
        strides: 2,
        padding: 'same',
        depthMultiplier: 2,
        activation: 'relu',
        depthwiseInitializer: tfl.initializers.glorotUniform({ seed: 1 }),
        pointwiseInitializer: tfl.initializers.glorotUniform({ seed: 2 }),
      })
      .apply(input) as tfl.SymbolicTensor;
    const depthwise = tfl.layers
      .depthwiseConv2d({ kernelSize: 3, padding: 'valid', depthwiseInitializer: tfl.initializers.glorotUniform({ seed: 3 }) })
      .apply(separable) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: depthwise });
    const names = model.trainableWeights.map((weight) => weight.originalName);
    const values = seededValues(2 * 9 * 8 * 4, 7);

    const outputs = await onBothBackends(() => {
      const x = tf.tensor4d(values, [2, 9, 8, 4]);
      const { grads } = tf.variableGrads(() => tf.sum(tf.square(model.apply(x) as tf.Tensor)) as tf.Scalar);
      return names.map((name) => grads[name]!);
    });

    expect(outputs.wasm.values).toHaveLength(names.length);
    expectSameOutputs(outputs);
    model.dispose();
  });

  it('adam steps lower the loss', () => {
    const model = buildAutoencoder();
    const x = tf.tensor4d(seededValues(4 * 12 * 10 * 3, 6).map((v) => (v + 1) / 2), [4, 12, 10, 3]);
    const optimizer = tf.train.adam(0.01);
    const loss = () => tf.losses.meanSquaredError(x, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar;
    const step = () => optimizer.minimize(loss, true)!;

    const losses: number[] = [];
    for (let i = 0; i < 16; i++) {
      const loss = step();
      losses.push(loss.dataSync()[0]!);
      loss.dispose();
    }
    const firstLoss = losses[0]!;
    const lastLoss = losses[losses.length - 1]!;
    x.dispose();
    optimizer.dispose();
    model.dispose();

    expect(Number.isFinite(lastLoss)).toBe(true);
    expect(lastLoss).toBeLessThan(firstLoss);
  });
});

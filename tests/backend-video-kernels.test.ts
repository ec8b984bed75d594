import * as tf from '@tensorflow/tfjs-core';
import { getKernel, Transpose, Unpack } from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../src/backend/select.js';
import { mergeTransposeAxes, registerWasmRecurrentKernels, WASM_RECURRENT_KERNELS } from '../src/backend/wasm-recurrent-kernels.js';
import { buildVideoAutoencoder, type VideoAutoencoderArchitecture } from '../src/models/video-anomaly.js';
import { expectSameOutputs, onBothBackends, seededTensor, seededValues } from './helpers/backends.js';

const TINY: VideoAutoencoderArchitecture = Object.freeze({
  clipLength: 4,
  contextFrames: 0,
  predictionOffset: 0,
  frameHeight: 16,
  frameWidth: 12,
  baseFilters: 4,
  latentFilters: 6,
  lstmFilters: 4,
  bottleneckFilters: 3,
});

beforeAll(async () => {
  await initBackend('wasm');
});

describe('mergeTransposeAxes', () => {
  it.each([
    { shape: [2, 3, 4, 5, 6], perm: [1, 0, 2, 3, 4], expected: { shape: [2, 3, 120], perm: [1, 0, 2] } },
    { shape: [2, 3, 4, 5], perm: [0, 2, 3, 1], expected: { shape: [2, 3, 20], perm: [0, 2, 1] } },
    { shape: [2, 3, 4], perm: [2, 1, 0], expected: { shape: [2, 3, 4], perm: [2, 1, 0] } },
    { shape: [2, 3, 4, 5], perm: [2, 3, 0, 1], expected: { shape: [6, 20], perm: [1, 0] } },
    { shape: [2, 3, 4], perm: [0, 1, 2], expected: { shape: [24], perm: [0] } },
  ])('merges $perm of $shape', ({ shape, perm, expected }) => {
    expect(mergeTransposeAxes(shape, perm)).toEqual(expected);
  });
});

describe('wasm Transpose', () => {
  it.each([
    { shape: [3, 4, 5, 2, 3], perm: [1, 0, 2, 3, 4] },
    { shape: [3, 4, 5, 2, 3], perm: [0, 2, 1, 4, 3] },
    { shape: [2, 1, 3, 4, 1, 2], perm: [5, 4, 3, 2, 1, 0] },
    { shape: [4, 5, 3], perm: [2, 0, 1] },
    { shape: [6, 7], perm: [1, 0] },
    { shape: [2, 3, 4], perm: [0, 1, 2] },
  ])('matches cpu: $perm of $shape', async ({ shape, perm }) => {
    expectSameOutputs(await onBothBackends(() => tf.transpose(seededTensor(shape, 1), perm)));
  });

  it('matches cpu on int32', async () => {
    const values = Int32Array.from({ length: 2 * 3 * 4 * 5 }, (_, i) => i - 7);
    expectSameOutputs(await onBothBackends(() => tf.transpose(tf.tensor(values, [2, 3, 4, 5], 'int32'), [1, 0, 3, 2])));
  });
});

describe('wasm Unpack', () => {
  it.each([0, 1, 2, 3, 4, -1])('matches cpu on axis %i of a rank-5 tensor', async (axis) => {
    expectSameOutputs(await onBothBackends(() => tf.unstack(seededTensor([3, 4, 2, 5, 3], 2), axis)));
  });

  it('matches cpu on int32 and bool', async () => {
    const values = Int32Array.from({ length: 24 }, (_, i) => i % 5);
    expectSameOutputs(await onBothBackends(() => tf.unstack(tf.tensor(values, [2, 3, 4], 'int32'), 1)));
    // Not tf.cast: the wasm Cast from int32 to bool keeps the integers instead of making them 0 or 1.
    expectSameOutputs(await onBothBackends(() => tf.unstack(tf.greater(tf.tensor(values, [2, 3, 4], 'int32'), 2), 2)));
  });

  it('splits string tensors through the stock kernel', () => {
    const parts = tf.unstack(tf.tensor([['a', 'b'], ['c', 'd']]), 1);
    expect(parts.map((part) => part.arraySync())).toEqual([
      ['a', 'c'],
      ['b', 'd'],
    ]);
    tf.dispose(parts);
  });

  it('keeps every output intact while the heap grows', () => {
    // Each output is allocated after the previous ones are written, and an allocation that grows
    // the wasm heap replaces the memory that earlier views point into.
    const heapBytes = () => (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.buffer.byteLength;
    const size = 1024 * 1024;
    const input = tf.tidy(() => tf.reshape(tf.tile(tf.range(0, 4, 1, 'float32'), [size]), [size, 4]));
    const heapBefore = heapBytes();
    const parts = tf.unstack(input, 1);
    const grew = heapBytes() > heapBefore;
    const firstValues = parts.map((part) => Array.from(part.dataSync().subarray(0, 3)));
    const lastValues = parts.map((part) => part.dataSync()[size - 1]);
    tf.dispose([input, ...parts]);

    expect(grew).toBe(true);
    expect(firstValues).toEqual([
      [0, 0, 0],
      [1, 1, 1],
      [2, 2, 2],
      [3, 3, 3],
    ]);
    expect(lastValues).toEqual([0, 1, 2, 3]);
  });

  it('leaves no tensors behind', () => {
    const input = seededTensor([2, 3, 4, 5, 2], 3);
    const before = tf.memory().numTensors;
    tf.dispose(tf.unstack(input, 1));
    tf.dispose(tf.transpose(input, [1, 0, 2, 3, 4]));
    expect(tf.memory().numTensors).toBe(before);
    input.dispose();
  });
});

describe('wasm recurrent kernel registration', () => {
  it('replaces both kernels and registers them once', () => {
    const functions = WASM_RECURRENT_KERNELS.map((name) => getKernel(name, 'wasm')?.kernelFunc);
    registerWasmRecurrentKernels();
    expect(WASM_RECURRENT_KERNELS).toEqual([Transpose, Unpack]);
    expect(WASM_RECURRENT_KERNELS.map((name) => getKernel(name, 'wasm')?.kernelFunc)).toEqual(functions);
  });
});

describe('wasm video autoencoder training', () => {
  it('stack gradients match cpu', async () => {
    const outputs = await onBothBackends(() => {
      const parts = [0, 1, 2].map((i) => seededTensor([2, 3, 4, 2], 10 + i));
      const weights = seededTensor([2, 3, 3, 4, 2], 20);
      return tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(tf.stack([a, b, c], 1), weights)))(parts);
    });
    expectSameOutputs(outputs);
  });

  it('gradients of every weight match cpu', async () => {
    const model = buildVideoAutoencoder(TINY, 5);
    const { clipLength, frameHeight, frameWidth } = TINY;
    const shape = [2, clipLength, frameHeight, frameWidth, 1];
    const clips = seededValues(shape.reduce((a, b) => a * b, 1), 6).map((v) => (v + 1) / 2);
    const names = model.trainableWeights.map((weight) => weight.originalName);

    const outputs = await onBothBackends(() => {
      const x = tf.tensor(clips, shape);
      const loss = () => tf.losses.meanSquaredError(x, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar;
      const { grads } = tf.variableGrads(loss);
      return names.map((name) => grads[name]!);
    });

    // Kernel and bias of two convolutions and two transposed ones, and kernel, recurrent kernel and bias of three ConvLSTMs.
    expect(outputs.wasm.values).toHaveLength(2 * 4 + 3 * 3);
    expectSameOutputs(outputs);
    model.dispose();
  });

  it('adam steps lower the reconstruction loss', () => {
    const model = buildVideoAutoencoder(TINY, 7);
    const { clipLength, frameHeight, frameWidth } = TINY;
    // A bright square that moves one pixel per frame over a dark background.
    const clips = tf.tidy(() => {
      const frames = Array.from({ length: clipLength }, (_, t) => tf.pad(tf.ones([4, 4]), [[4, frameHeight - 8], [2 + t, frameWidth - 6 - t]]));
      return tf.reshape(tf.stack(frames), [1, clipLength, frameHeight, frameWidth, 1]);
    });
    const optimizer = tf.train.adam(0.01);
    const loss = () => tf.losses.meanSquaredError(clips, model.apply(clips, { training: true }) as tf.Tensor) as tf.Scalar;

    const losses: number[] = [];
    for (let i = 0; i < 12; i++) {
      const value = optimizer.minimize(loss, true)!;
      losses.push(value.dataSync()[0]!);
      value.dispose();
    }
    tf.dispose(clips);
    optimizer.dispose();
    model.dispose();

    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[losses.length - 1]!).toBeLessThan(losses[0]! * 0.8);
  });
});

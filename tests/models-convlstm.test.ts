import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../src/backend/select.js';
import { withStockConvLstmStep } from '../src/models/convlstm.js';
import { seededTensor } from './helpers/backends.js';

interface LayerCase {
  label: string;
  padding: 'same' | 'valid';
  useBias: boolean;
  returnSequences: boolean;
}

const CASES: LayerCase[] = [
  { label: 'same padding with bias, sequences', padding: 'same', useBias: true, returnSequences: true },
  { label: 'valid padding without bias, last state', padding: 'valid', useBias: false, returnSequences: false },
];

/** Builds a model of one ConvLSTM2D layer with seeded, non-zero weights. */
function convLstmModel(c: LayerCase): tfl.LayersModel {
  const input = tfl.input({ shape: [4, 7, 6, 3] });
  const layer = tfl.layers.convLstm2d({
    filters: 5,
    kernelSize: 3,
    padding: c.padding,
    useBias: c.useBias,
    returnSequences: c.returnSequences,
    kernelInitializer: 'glorotUniform',
    recurrentInitializer: 'glorotUniform',
  });
  const model = tfl.model({ inputs: input, outputs: layer.apply(input) as tfl.SymbolicTensor });
  model.setWeights(model.getWeights().map((weight, index) => tf.mul(seededTensor(weight.shape, 10 + index), 0.5)));
  return model;
}

/** Returns the output and the gradient of a weighted sum of it for every weight, as arrays. */
function outputAndGradients(model: tfl.LayersModel, x: tf.Tensor): Float32Array[] {
  return tf.tidy(() => {
    const output = model.apply(x) as tf.Tensor;
    const weights = seededTensor(output.shape, 3);
    const { grads } = tf.variableGrads(() => tf.sum(tf.mul(model.apply(x) as tf.Tensor, weights)) as tf.Scalar);
    const gradients = model.trainableWeights.map((weight) => grads[weight.originalName]!);
    return [output, ...gradients].map((tensor) => tensor.dataSync() as Float32Array);
  });
}

function maxRelativeDifference(actual: Float32Array, expected: Float32Array): number {
  let difference = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    difference = Math.max(difference, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return difference / Math.max(scale, 1e-12);
}

beforeAll(async () => {
  await initBackend('wasm');
});

describe('fused ConvLSTM2D step', () => {
  it.each(CASES)('matches the stock step: $label', (c) => {
    const model = convLstmModel(c);
    const x = seededTensor([2, 4, 7, 6, 3], 1);

    const fused = outputAndGradients(model, x);
    const stock = withStockConvLstmStep(() => outputAndGradients(model, x));

    expect(fused.length).toBe(stock.length);
    for (let i = 0; i < stock.length; i++) {
      expect(maxRelativeDifference(fused[i]!, stock[i]!), `array ${i}`).toBeLessThan(1e-5);
    }
    tf.dispose(x);
    model.dispose();
  });

  it('runs two convolutions per time step', async () => {
    const model = convLstmModel(CASES[0]!);
    const x = seededTensor([2, 4, 7, 6, 3], 1);
    const countConvolutions = async () => {
      const profile = await tf.profile(() => model.predict(x) as tf.Tensor);
      return profile.kernels.filter((kernel) => kernel.name === 'Conv2D' || kernel.name === 'FusedConv2D').length;
    };

    expect(await countConvolutions()).toBe(2 * 4);
    // tf.profile calls its function before its first await, so the stock step is still in place.
    expect(await withStockConvLstmStep(countConvolutions)).toBe(8 * 4);
    tf.dispose(x);
    model.dispose();
  });

  it('keeps the saved class name and weights', () => {
    const model = convLstmModel(CASES[0]!);
    const topology = JSON.stringify(model.toJSON(null, false));
    expect(topology).toContain('"class_name":"ConvLSTM2D"');
    expect(model.getWeights().map((weight) => weight.shape)).toEqual([
      [3, 3, 3, 20],
      [3, 3, 5, 20],
      [20],
    ]);
    model.dispose();
  });
});

import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../src/backend/select.js';
import { buildFaceSwap, decodeAs } from '../src/models/faceswap.js';
import { applyColourJitter, applyGridWarp, applySimilarity, augmentFace } from '../src/train/faceswap-augment.js';
import { SeededRandom } from '../src/train/random.js';
import { dssim, gaussianWindow, reconstructionLoss, ssim, SSIM_WINDOW } from '../src/train/ssim.js';
import { expectSameOutputs, onBothBackends, seededTensor } from './helpers/backends.js';
import { syntheticFace } from './helpers/faces.js';

beforeAll(async () => {
  await initBackend('wasm');
});

const SIZE = 64;
const face = (identity: number, seed: number): Float32Array => Float32Array.from(syntheticFace(identity, seed, SIZE), (value) => value / 255);

describe('face-swap augmentation', () => {
  it('repeats for a seed', () => {
    const crop = face(0, 3);
    const first = augmentFace(crop, SIZE, new SeededRandom(7));
    const again = augmentFace(crop, SIZE, new SeededRandom(7));
    const other = augmentFace(crop, SIZE, new SeededRandom(8));

    expect(Array.from(again.input)).toEqual(Array.from(first.input));
    expect(Array.from(again.target)).toEqual(Array.from(first.target));
    expect(Array.from(other.input)).not.toEqual(Array.from(first.input));
  });

  it('keeps range, warps input only', () => {
    const crop = face(1, 5);
    for (let seed = 1; seed <= 5; seed++) {
      const { input, target } = augmentFace(crop, SIZE, new SeededRandom(seed));
      for (const values of [input, target]) {
        expect(Math.min(...values)).toBeGreaterThanOrEqual(0);
        expect(Math.max(...values)).toBeLessThanOrEqual(1);
      }
      expect(Array.from(input)).not.toEqual(Array.from(target));
    }
  });

  it('is exact for zero offsets', () => {
    const crop = face(0, 2);
    expect(Array.from(applyGridWarp(crop, SIZE, new Float32Array(5 * 5 * 2), 5))).toEqual(Array.from(crop));
    expect(Array.from(applySimilarity(crop, SIZE, { angle: 0, scale: 1, dx: 0, dy: 0, flip: false }))).toEqual(Array.from(crop));
    expect(Array.from(applyColourJitter(crop, { brightness: 0, contrast: 1, saturation: 1 })).every((value, index) => Math.abs(value - crop[index]) < 1e-6)).toBe(true);
  });

  it('mirrors and shifts whole pixels', () => {
    const crop = face(0, 4);
    const mirrored = applySimilarity(crop, SIZE, { angle: 0, scale: 1, dx: 0, dy: 0, flip: true });
    const shifted = applySimilarity(crop, SIZE, { angle: 0, scale: 1, dx: 3, dy: 0, flip: false });
    const at = (image: Float32Array, x: number, y: number): number[] => Array.from(image.subarray((y * SIZE + x) * 3, (y * SIZE + x) * 3 + 3));

    expect(at(mirrored, 10, 20)).toEqual(at(crop, SIZE - 1 - 10, 20));
    expect(at(shifted, 30, 20)).toEqual(at(crop, 27, 20));
  });
});

/** Computes SSIM of one-channel images of exactly one window, by the formula, in float64. */
function referenceSsim(x: number[], y: number[]): number {
  const window1d = gaussianWindow();
  const weights = x.map((_, index) => window1d[Math.floor(index / SSIM_WINDOW)] * window1d[index % SSIM_WINDOW]);
  const mean = (values: number[]): number => values.reduce((sum, value, index) => sum + weights[index] * value, 0);
  const muX = mean(x);
  const muY = mean(y);
  const varianceX = mean(x.map((value) => value * value)) - muX * muX;
  const varianceY = mean(y.map((value) => value * value)) - muY * muY;
  const covariance = mean(x.map((value, index) => value * y[index])) - muX * muY;
  const c1 = 0.01 ** 2;
  const c2 = 0.03 ** 2;
  return ((2 * muX * muY + c1) * (2 * covariance + c2)) / ((muX * muX + muY * muY + c1) * (varianceX + varianceY + c2));
}

describe('SSIM and DSSIM', () => {
  it('is 1 for identical images', () => {
    const image = tf.randomUniform([2, 16, 16, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
    expect(ssim(image, image).dataSync()[0]).toBeCloseTo(1, 5);
    expect(dssim(image, image).dataSync()[0]).toBeCloseTo(0, 5);
  });

  it('matches closed form, flat images', () => {
    const x = tf.fill([1, SSIM_WINDOW, SSIM_WINDOW, 1], 0.2) as tf.Tensor4D;
    const y = tf.fill([1, SSIM_WINDOW, SSIM_WINDOW, 1], 0.6) as tf.Tensor4D;
    // Without variance SSIM is (2ab + C1) / (a^2 + b^2 + C1) = (0.24 + 1e-4) / (0.04 + 0.36 + 1e-4).
    // Float32 sums leave the variances a little above zero, hence three digits.
    expect(ssim(x, y).dataSync()[0]).toBeCloseTo(0.2401 / 0.4001, 3);
  });

  it('matches formula on 11x11 example', () => {
    const x = Array.from({ length: SSIM_WINDOW * SSIM_WINDOW }, (_, index) => ((index * 37) % 11) / 10);
    const y = x.map((value, index) => Math.min(1, Math.max(0, 0.8 * value + 0.1 + ((index % 3) - 1) * 0.05)));
    const computed = ssim(tf.tensor4d(x, [1, SSIM_WINDOW, SSIM_WINDOW, 1]), tf.tensor4d(y, [1, SSIM_WINDOW, SSIM_WINDOW, 1])).dataSync()[0];
    expect(computed).toBeCloseTo(referenceSsim(x, y), 4);
  });

  it('has same gradients on wasm and cpu', async () => {
    const outputs = await onBothBackends(() => {
      const target = tf.sigmoid(seededTensor([2, 20, 20, 3], 11)) as tf.Tensor4D;
      const prediction = tf.sigmoid(seededTensor([2, 20, 20, 3], 12)) as tf.Tensor4D;
      const gradient = tf.grad((x: tf.Tensor) => reconstructionLoss(x as tf.Tensor4D, target).total)(prediction);
      return [reconstructionLoss(prediction, target).total, gradient, tf.grad((x: tf.Tensor) => dssim(x as tf.Tensor4D, target))(prediction)];
    });
    expectSameOutputs(outputs);
  });
});

describe('face-swap training step', () => {
  it('lowers loss on a fixed batch', () => {
    const networks = buildFaceSwap({ size: SIZE, filters: 4, latentDim: 8 }, 3);
    const pixels = SIZE * SIZE * 3;
    const batch = (identity: number): tf.Tensor4D => {
      const values = new Float32Array(4 * pixels);
      for (let index = 0; index < 4; index++) values.set(face(identity, index + 1), index * pixels);
      return tf.tensor4d(values, [4, SIZE, SIZE, 3]);
    };
    const a = batch(0);
    const b = batch(1);
    const variables = [networks.encoder, networks.a, networks.b].flatMap((network) => network.trainableWeights.map((weight) => weight.read() as tf.Variable));
    const optimizer = tf.train.adam(3e-3);
    const step = (): number => {
      const loss = optimizer.minimize(() => tf.add(reconstructionLoss(decodeAs(networks, a, 'a', true), a).total, reconstructionLoss(decodeAs(networks, b, 'b', true), b).total) as tf.Scalar, true, variables)!;
      const value = loss.dataSync()[0];
      loss.dispose();
      return value;
    };

    const first = step();
    let last = first;
    for (let index = 0; index < 30; index++) last = step();
    expect(last).toBeLessThan(0.8 * first);
  });
});

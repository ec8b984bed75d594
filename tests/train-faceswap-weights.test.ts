import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../src/backend/select.js';
import { featheredMask } from '../src/faces/blend.js';
import { DEFAULT_AUGMENTATION, augmentFace } from '../src/train/faceswap-augment.js';
import { faceLossWeights, UNIFORM_LOSS_WEIGHTING } from '../src/train/faceswap-weights.js';
import { resolveFaceSwapTrainOptions } from '../src/train/faceswap.js';
import { SeededRandom } from '../src/train/random.js';
import { reconstructionLoss } from '../src/train/ssim.js';
import { seededTensor } from './helpers/backends.js';
import { syntheticFace, syntheticLandmarks } from './helpers/faces.js';

beforeAll(async () => {
  await initBackend('wasm');
});

// At 64 pixels the drawing's eyes are 6 pixels wide, and the feather spreads their weight thin.
const SIZE = 128;
const landmarks = syntheticLandmarks(3, SIZE);
const at = (map: Float32Array, [x, y]: readonly number[]): number => map[Math.round(y) * SIZE + Math.round(x)];
const centre = (from: number, to: number): [number, number] => {
  const points = landmarks.slice(from, to);
  return [points.reduce((sum, point) => sum + point[0], 0) / points.length, points.reduce((sum, point) => sum + point[1], 0) / points.length];
};

describe('face-swap loss weight map', () => {
  it('ranks eyes, face, background', () => {
    const weights = faceLossWeights(landmarks, SIZE, { background: 0.1, eyesMouth: 8 });
    const cheek: [number, number] = [(landmarks[2][0] + landmarks[31][0]) / 2, (landmarks[2][1] + landmarks[31][1]) / 2];

    expect(at(weights, [0, 0])).toBeCloseTo(0.1, 6);
    expect(at(weights, [SIZE - 1, SIZE - 1])).toBeCloseTo(0.1, 6);
    expect(at(weights, cheek)).toBeGreaterThan(0.9);
    expect(at(weights, cheek)).toBeLessThan(1.5);
    for (const feature of [centre(36, 42), centre(42, 48), centre(48, 60)]) expect(at(weights, feature)).toBeGreaterThan(5);
  });

  it('follows the blend mask', () => {
    const weights = faceLossWeights(landmarks, SIZE, { background: 0.25, eyesMouth: 0 });
    const mask = featheredMask(landmarks, SIZE, 'face');

    for (let index = 0; index < weights.length; index++) expect(weights[index]).toBeCloseTo(0.25 + 0.75 * mask[index], 6);
  });

  it('is 1 everywhere when uniform', () => {
    expect(faceLossWeights(landmarks, SIZE, UNIFORM_LOSS_WEIGHTING).every((value) => value === 1)).toBe(true);
  });

  it('moves with the augmented target', () => {
    const weights = faceLossWeights(landmarks, SIZE);
    const asImage = new Float32Array(SIZE * SIZE * 3).map((_, index) => weights[Math.floor(index / 3)] / 9);
    const still = { ...DEFAULT_AUGMENTATION, brightness: 0, contrast: 0, saturation: 0 };
    const face = Float32Array.from(syntheticFace(0, 3, SIZE), (value) => value / 255);

    const moved = augmentFace(asImage, SIZE, new SeededRandom(11), still, weights);
    const plain = augmentFace(face, SIZE, new SeededRandom(11));
    const weighed = augmentFace(face, SIZE, new SeededRandom(11), DEFAULT_AUGMENTATION, weights);

    let largest = 0;
    for (let index = 0; index < weights.length; index++) largest = Math.max(largest, Math.abs(moved.weights![index] / 9 - moved.target[index * 3]));
    expect(largest).toBeLessThan(1e-6);
    expect(Array.from(weighed.target)).toEqual(Array.from(plain.target));
    expect(Array.from(weighed.input)).toEqual(Array.from(plain.input));
  });
});

describe('weighted reconstruction loss', () => {
  let predictions: tf.Tensor4D;
  let targets: tf.Tensor4D;
  beforeAll(() => {
    predictions = tf.sigmoid(seededTensor([3, 24, 24, 3], 1));
    targets = tf.sigmoid(seededTensor([3, 24, 24, 3], 2));
  });

  it('equals plain loss, equal weights', () => {
    const plain = reconstructionLoss(predictions, targets);
    const weighted = reconstructionLoss(predictions, targets, tf.fill([3, 24, 24, 1], 2.5) as tf.Tensor4D);

    for (const key of ['total', 'mae', 'dssim'] as const) expect(weighted[key].dataSync()[0]).toBeCloseTo(plain[key].dataSync()[0], 5);
  });

  it('ignores zero-weight pixels', () => {
    // Only the left third weighs. A change on the right, beyond the SSIM window's reach, must leave the loss as it was.
    const left = tf.tidy(() => tf.concat([tf.ones([3, 24, 8, 1]), tf.zeros([3, 24, 16, 1])], 2)) as tf.Tensor4D;
    const changed = tf.tidy(() => tf.concat([tf.slice(predictions, [0, 0, 0, 0], [-1, -1, 20, -1]), tf.zeros([3, 24, 4, 3])], 2)) as tf.Tensor4D;

    const before = reconstructionLoss(predictions, targets, left).total.dataSync()[0];
    const after = reconstructionLoss(changed, targets, left).total.dataSync()[0];
    expect(after).toBeCloseTo(before, 6);
    expect(reconstructionLoss(changed, targets).total.dataSync()[0]).not.toBeCloseTo(reconstructionLoss(predictions, targets).total.dataSync()[0], 3);
  });

  it('splits over batch shards', () => {
    const weights = tf.tidy(() => tf.add(tf.abs(seededTensor([3, 24, 24, 1], 3)), 0.1)) as tf.Tensor4D;
    const whole = reconstructionLoss(predictions, targets, weights).total.dataSync()[0];
    const part = (begin: number, count: number): number =>
      reconstructionLoss(tf.slice(predictions, begin, count), tf.slice(targets, begin, count), tf.slice(weights, begin, count)).total.dataSync()[0] * (count / 3);

    expect(part(0, 1) + part(1, 2)).toBeCloseTo(whole, 5);
  });
});

describe('face-swap weighting options', () => {
  const base = { a: 'a', b: 'b', out: 'out' };

  it('default to 0.1 and 8', () => {
    expect(resolveFaceSwapTrainOptions(base)).toMatchObject({ backgroundWeight: 0.1, eyesMouthWeight: 8 });
    expect(resolveFaceSwapTrainOptions({ ...base, backgroundWeight: '1', eyesMouthWeight: '0' })).toMatchObject({ backgroundWeight: 1, eyesMouthWeight: 0 });
  });

  it('reject out-of-range weights', () => {
    expect(() => resolveFaceSwapTrainOptions({ ...base, backgroundWeight: '2' })).toThrow('Expected a number from 0 to 1 for --background-weight but received 2');
    expect(() => resolveFaceSwapTrainOptions({ ...base, eyesMouthWeight: '-1' })).toThrow('Expected a number from 0 to 100 for --eyes-mouth-weight but received -1');
  });
});

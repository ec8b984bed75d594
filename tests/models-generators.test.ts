import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../src/backend/select.js';
import { buildGan, toSignedRange } from '../src/models/gan.js';
import { MinibatchStddevLayer } from '../src/models/layers.js';
import { buildVae, type VaeNetworks, vaeLoss } from '../src/models/vae.js';
import { discriminatorStep, generatorStep } from '../src/train/gan.js';
import { expectSameOutputs, onBothBackends, seededTensor } from './helpers/backends.js';
import { SHAPE_CLASSES, shapeImage } from './helpers/datasets.js';
import { SeededRandom } from '../src/train/random.js';

const TINY_VAE = { imageSize: 8, channels: 1 as const, latentDim: 2, classCount: 3, filters: [4, 4, 4] as [number, number, number], hidden: 8 };
const TINY_GAN = { imageSize: 8, channels: 1 as const, noiseDim: 4, classCount: 3, filters: [8, 4, 4] as [number, number, number] };

beforeAll(async () => {
  await initBackend('wasm');
});

function snapshot(network: tfl.LayersModel): Float32Array[] {
  return network.trainableWeights.map((weight) => weight.read().dataSync() as Float32Array);
}

function changed(before: Float32Array[], after: Float32Array[]): boolean {
  return before.some((values, index) => values.some((value, i) => value !== after[index][i]));
}

function oneHot(labels: number[], classes: number): tf.Tensor2D {
  return tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), classes), 'float32') as tf.Tensor2D;
}

describe('VAE loss', () => {
  it('matches closed-form cross-entropy and KL', () => {
    // Stand-in networks with known outputs: mu = 1 and log-variance 0 in each of 2 dimensions
    // give KL = 0.5 * (mu^2) summed = 1; a decoder output of 0.5 costs log 2 per pixel.
    const fake = {
      encoder: { apply: () => [tf.ones([2, 2]), tf.zeros([2, 2])] },
      decoder: { apply: () => tf.fill([2, 4, 4, 1], 0.5) },
    } as unknown as VaeNetworks;
    const images = tf.fill([2, 4, 4, 1], 0.25) as tf.Tensor4D;
    const loss = vaeLoss(fake, images, undefined, tf.zeros([2, 2]) as tf.Tensor2D, 2, false);
    expect(loss.kl.dataSync()[0]).toBeCloseTo(1, 6);
    expect(loss.reconstruction.dataSync()[0]).toBeCloseTo(16 * Math.LN2, 4);
    expect(loss.total.dataSync()[0]).toBeCloseTo(16 * Math.LN2 + 2, 4);
  });

  it('reparameterization passes gradients to mu and log-variance', () => {
    const networks = buildVae(TINY_VAE, 1);
    const images = tf.randomUniform([4, 8, 8, 1], 0, 1, 'float32', 2) as tf.Tensor4D;
    const variables = networks.encoder.trainableWeights.map((weight) => weight.read() as tf.Variable);
    const { grads } = tf.variableGrads(() => vaeLoss(networks, images, oneHot([0, 1, 2, 0], 3), tf.randomNormal([4, 2], 0, 1, 'float32', 3) as tf.Tensor2D, 1, true).total, variables);
    const norm = (name: string): number => {
      const entry = Object.entries(grads).find(([key]) => key.includes(name));
      return tf.norm(entry![1]).dataSync()[0];
    };
    expect(norm('mu/kernel')).toBeGreaterThan(0);
    expect(norm('log_variance/kernel')).toBeGreaterThan(0);
  });

  it('cuts the loss on shapes', () => {
    // Grey targets keep cross-entropy above their own entropy, so the loss cannot fall to zero.
    const networks = buildVae(TINY_VAE, 1);
    const optimizer = tf.train.adam(0.01);
    const random = new SeededRandom(5);
    const pixels = new Float32Array(24 * 64);
    const labels: number[] = [];
    for (let index = 0; index < 24; index++) {
      pixels.set(Array.from(shapeImage(SHAPE_CLASSES[index % 3], 8, random), (value) => value / 255), index * 64);
      labels.push(index % 3);
    }
    const images = tf.tensor4d(pixels, [24, 8, 8, 1]);
    const classes = oneHot(labels, 3);
    const lossAt = (step: number): number =>
      optimizer.minimize(() => vaeLoss(networks, images, classes, tf.randomNormal([24, 2], 0, 1, 'float32', step) as tf.Tensor2D, 1, true).total, true)!.dataSync()[0];
    const first = lossAt(0);
    let last = first;
    for (let step = 1; step < 80; step++) last = lossAt(step);
    expect(last).toBeLessThan(0.8 * first);
  });
});

describe('DCGAN steps', () => {
  it('each step moves only its network', () => {
    const networks = { ...buildGan(TINY_GAN, 1) };
    const batch = { images: tf.randomUniform([4, 8, 8, 1], 0, 1, 'float32', 1) as tf.Tensor4D, oneHot: oneHot([0, 1, 2, 0], 3) };
    const random = new SeededRandom(1);
    const seed = (): number => random.nextInt(2 ** 31);

    const generatorBefore = snapshot(networks.generator);
    const discriminatorBefore = snapshot(networks.discriminator);
    const d = discriminatorStep(networks, tf.train.adam(1e-3, 0.5), batch, seed);
    expect(d.accuracy).toBeGreaterThanOrEqual(0);
    expect(d.accuracy).toBeLessThanOrEqual(1);
    expect(changed(discriminatorBefore, snapshot(networks.discriminator))).toBe(true);
    expect(changed(generatorBefore, snapshot(networks.generator))).toBe(false);

    const discriminatorMiddle = snapshot(networks.discriminator);
    generatorStep(networks, tf.train.adam(1e-3, 0.5), 4, 3, seed);
    expect(changed(generatorBefore, snapshot(networks.generator))).toBe(true);
    expect(changed(discriminatorMiddle, snapshot(networks.discriminator))).toBe(false);
  });

  it('generator gradients match CPU backend', async () => {
    const { generator, discriminator } = buildGan(TINY_GAN, 2);
    const variables = generator.trainableWeights.map((weight) => weight.read() as tf.Variable);
    const outputs = await onBothBackends(() => {
      const noise = seededTensor([4, 4], 3);
      const classes = oneHot([0, 1, 2, 1], 3);
      const { grads } = tf.variableGrads(() => {
        const [logit, classLogits] = discriminator.apply(generator.apply([noise, classes], { training: true }) as tf.Tensor, { training: false }) as tf.Tensor[];
        return tf.add(tf.losses.sigmoidCrossEntropy(tf.ones([4, 1]), logit), tf.losses.softmaxCrossEntropy(classes, classLogits)) as tf.Scalar;
      }, variables);
      return Object.values(grads).map((grad) => tf.div(grad, tf.add(tf.max(tf.abs(grad)), 1e-12)));
    });
    expectSameOutputs(outputs);
  });

  it('maps pixels to [-1, 1]', () => {
    expect(Array.from(toSignedRange(tf.tensor1d([0, 0.5, 1])).dataSync())).toEqual([-1, 0, 1]);
  });
});

describe('minibatch standard deviation layer', () => {
  it('separates groups, zero when identical', () => {
    const layer = new MinibatchStddevLayer({ groupSize: 2 });
    const same = tf.ones([2, 2, 2, 1]);
    const different = tf.concat([tf.zeros([1, 2, 2, 1]), tf.fill([1, 2, 2, 1], 2)]);
    const output = layer.apply(tf.concat([same, different])) as tf.Tensor;
    expect(output.shape).toEqual([4, 2, 2, 2]);
    const appended = tf.slice(output, [0, 0, 0, 1], [4, 1, 1, 1]).dataSync();
    expect(appended[0]).toBeCloseTo(0, 3);
    expect(appended[1]).toBeCloseTo(0, 3);
    expect(appended[2]).toBeCloseTo(1, 5);
    expect(appended[3]).toBeCloseTo(1, 5);
  });
});

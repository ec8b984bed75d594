import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

import type { ImageDataset } from '../dataset/folder.js';
import { buildGan, DEFAULT_GAN_ARCHITECTURE, type GanArchitecture, toSignedRange, toUnitRange } from '../models/gan.js';
import { withClasses } from '../models/vae.js';
import type { GeneratorTrainOptions } from './generator-options.js';
import type { DatasetShape, GeneratorTrainingTask } from './generator-trainer.js';

export const GAN_MODEL_VERSION = '1.0.0';
/**
 * Target for real images in the discriminator's loss: one-sided label smoothing (Salimans et al.,
 * 2016) keeps the discriminator from growing so sure that the generator's gradients vanish.
 */
const REAL_TARGET = 1;
const VALIDATION_LIMIT = 1000;

function architectureOf(options: GeneratorTrainOptions, shape: DatasetShape): GanArchitecture {
  return {
    ...DEFAULT_GAN_ARCHITECTURE,
    imageSize: shape.imageSize,
    channels: shape.channels,
    classCount: shape.classes.length,
    noiseDim: options.latentDim,
    filters: options.filters ?? DEFAULT_GAN_ARCHITECTURE.filters,
  };
}

function trainableOf(network: tfl.LayersModel): tf.Variable[] {
  return network.trainableWeights.map((weight) => weight.read() as tf.Variable);
}

/** Share of logits on the right side of zero: real images above, generated ones below. */
function accuracy(realLogits: tf.Tensor, fakeLogits: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.concat([tf.cast(tf.greater(realLogits, 0), 'float32'), tf.cast(tf.lessEqual(fakeLogits, 0), 'float32')])) as tf.Scalar);
}

/** The conditional DCGAN, trained by the textbook alternation of discriminator and generator steps. */
export const GAN_TRAINING: GeneratorTrainingTask = {
  kind: 'gan',
  version: GAN_MODEL_VERSION,
  build: (options, shape) => ({ ...buildGan(architectureOf(options, shape), options.seed) }),
  // beta1 = 0.5 as in the DCGAN paper: the default 0.9 makes the two players oscillate.
  optimizers: (options) => ({ discriminator: tf.train.adam(options.learningRate, 0.5), generator: tf.train.adam(options.learningRate, 0.5) }),
  architecture: (options, shape) => ({ ...architectureOf(options, shape) }),

  step(networks, optimizers, batch, seed) {
    const d = discriminatorStep(networks, optimizers.discriminator, batch, seed);
    const g = generatorStep(networks, optimizers.generator, batch.images.shape[0], batch.oneHot?.shape[1] ?? 0, seed);
    return { d_loss: d.loss, g_loss: g, d_accuracy: d.accuracy };
  },

  validate(networks, validation: ImageDataset, oneHot) {
    const { generator, discriminator } = networks;
    const count = Math.min(validation.count, VALIDATION_LIMIT);
    const pixels = validation.size * validation.size * validation.channels;
    const noiseDim = generator.inputs[0].shape[1] as number;
    const value = tf.tidy(() => {
      const real = toSignedRange(tf.tensor4d(validation.images.subarray(0, count * pixels), [count, validation.size, validation.size, validation.channels]));
      const classes = oneHot(validation.labels.subarray(0, count));
      const fake = generator.apply(withClasses(tf.randomNormal([count, noiseDim], 0, 1, 'float32', 11), classes), { training: false }) as tf.Tensor4D;
      const realLogits = discriminator.apply(withClasses(real, classes), { training: false }) as tf.Tensor;
      const fakeLogits = discriminator.apply(withClasses(fake, classes), { training: false }) as tf.Tensor;
      return accuracy(realLogits, fakeLogits).dataSync()[0];
    });
    return { val_d_accuracy: value };
  },

  sample: (networks, latent, oneHot) => toUnitRange(networks.generator.apply(withClasses(latent, oneHot), { training: false }) as tf.Tensor) as tf.Tensor4D,
};

function randomClasses(size: number, classCount: number, seed: () => number): tf.Tensor2D | undefined {
  if (classCount === 0) return undefined;
  return tf.cast(tf.oneHot(tf.randomUniform([size], 0, classCount, 'int32', seed()) as tf.Tensor1D, classCount), 'float32') as tf.Tensor2D;
}

/**
 * One discriminator step on a batch that mixes the real images (target REAL_TARGET) with as
 * many generated ones (target 0), of random classes. Only the discriminator's variables move.
 */
export function discriminatorStep(networks: Record<string, tfl.LayersModel>, optimizer: tf.Optimizer, batch: { images: tf.Tensor4D; oneHot: tf.Tensor2D | undefined }, seed: () => number): { loss: number; accuracy: number } {
  const { generator, discriminator } = networks;
  const size = batch.images.shape[0];
  const noiseDim = generator.inputs[0].shape[1] as number;
  let kept: tf.Scalar | undefined;
  const loss = optimizer.minimize(
    () => {
      const fakeClasses = randomClasses(size, batch.oneHot?.shape[1] ?? 0, seed);
      const fake = generator.apply(withClasses(tf.randomNormal([size, noiseDim], 0, 1, 'float32', seed()), fakeClasses), { training: true }) as tf.Tensor4D;
      const images = tf.concat([toSignedRange(batch.images), fake]);
      const classes = batch.oneHot === undefined ? undefined : tf.concat([batch.oneHot, fakeClasses!]);
      const logits = discriminator.apply(withClasses(images, classes), { training: true }) as tf.Tensor2D;
      const targets = tf.concat([tf.fill([size, 1], REAL_TARGET), tf.zeros([size, 1])]);
      kept = tf.keep(accuracy(tf.slice(logits, [0, 0], [size, 1]), tf.slice(logits, [size, 0], [size, 1])));
      return tf.losses.sigmoidCrossEntropy(targets, logits) as tf.Scalar;
    },
    true,
    trainableOf(discriminator),
  )!;
  const result = { loss: loss.dataSync()[0], accuracy: kept!.dataSync()[0] };
  tf.dispose([loss, kept!]);
  return result;
}

/**
 * One generator step through the discriminator, with "real" targets: the non-saturating loss of
 * Goodfellow et al. (2014). The discriminator is frozen because only the generator's variables
 * are handed to the optimizer.
 */
export function generatorStep(networks: Record<string, tfl.LayersModel>, optimizer: tf.Optimizer, size: number, classCount: number, seed: () => number): number {
  const { generator, discriminator } = networks;
  const noiseDim = generator.inputs[0].shape[1] as number;
  const loss = optimizer.minimize(
    () => {
      const classes = randomClasses(size, classCount, seed);
      const fake = generator.apply(withClasses(tf.randomNormal([size, noiseDim], 0, 1, 'float32', seed()), classes), { training: true }) as tf.Tensor4D;
      const logits = discriminator.apply(withClasses(fake, classes), { training: true }) as tf.Tensor2D;
      return tf.losses.sigmoidCrossEntropy(tf.ones([size, 1]), logits) as tf.Scalar;
    },
    true,
    trainableOf(generator),
  )!;
  const value = loss.dataSync()[0];
  loss.dispose();
  return value;
}

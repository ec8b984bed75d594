import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

import type { ImageDataset } from '../dataset/folder.js';
import { buildGan, DEFAULT_GAN_ARCHITECTURE, type GanArchitecture, toSignedRange, toUnitRange } from '../models/gan.js';
import { withClasses } from '../models/vae.js';
import type { GeneratorTrainOptions } from './generator-options.js';
import type { DatasetShape, GeneratorTrainingTask } from './generator-trainer.js';

export const GAN_MODEL_VERSION = '1.0.0';
/**
 * Target for real images in the discriminator's loss. One-sided label smoothing (0.9, Salimans
 * et al., 2016) was tried and made no difference to the collapse that the class head and the
 * minibatch deviation fixed, so the plain target stays.
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
    return tf.tidy(() => {
      const real = toSignedRange(tf.tensor4d(validation.images.subarray(0, count * pixels), [count, validation.size, validation.size, validation.channels]));
      const classes = oneHot(validation.labels.subarray(0, count));
      const fake = generator.apply(withClasses(tf.randomNormal([count, noiseDim], 0, 1, 'float32', 11), classes), { training: false }) as tf.Tensor4D;
      const realOutput = discriminate(discriminator, real, false);
      const metrics: Record<string, number> = { val_d_accuracy: accuracy(realOutput.logit, discriminate(discriminator, fake, false).logit).dataSync()[0] };
      // How well the auxiliary classifier names the class of real images it never trained on.
      if (classes !== undefined && realOutput.classLogits !== undefined) {
        metrics.val_class_accuracy = tf.mean(tf.cast(tf.equal(tf.argMax(realOutput.classLogits, 1), tf.argMax(classes, 1)), 'float32')).dataSync()[0];
      }
      return metrics;
    });
  },

  sample: (networks, latent, oneHot) => toUnitRange(networks.generator.apply(withClasses(latent, oneHot), { training: false }) as tf.Tensor) as tf.Tensor4D,
};

function randomClasses(size: number, classCount: number, seed: () => number): tf.Tensor2D | undefined {
  if (classCount === 0) return undefined;
  return tf.cast(tf.oneHot(tf.randomUniform([size], 0, classCount, 'int32', seed()) as tf.Tensor1D, classCount), 'float32') as tf.Tensor2D;
}

/** Returns the discriminator's "real" logits, and its class logits when the model has classes. */
export function discriminate(discriminator: tfl.LayersModel, images: tf.Tensor, training: boolean): { logit: tf.Tensor2D; classLogits?: tf.Tensor2D } {
  const output = discriminator.apply(images, { training }) as tf.Tensor2D | tf.Tensor2D[];
  return Array.isArray(output) ? { logit: output[0], classLogits: output[1] } : { logit: output };
}

/** Real-or-fake cross-entropy, plus the class cross-entropy of the auxiliary classifier when there are classes. */
function ganLoss(output: ReturnType<typeof discriminate>, targets: tf.Tensor, classes: tf.Tensor2D | undefined): tf.Scalar {
  const adversarial = tf.losses.sigmoidCrossEntropy(targets, output.logit) as tf.Scalar;
  if (classes === undefined || output.classLogits === undefined) return adversarial;
  return tf.add(adversarial, tf.losses.softmaxCrossEntropy(classes, output.classLogits)) as tf.Scalar;
}

/**
 * Runs one discriminator step on a batch that mixes the real images (target REAL_TARGET) with as
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
      const output = discriminate(discriminator, tf.concat([toSignedRange(batch.images), fake]), true);
      const classes = batch.oneHot === undefined ? undefined : tf.concat([batch.oneHot, fakeClasses!]);
      const targets = tf.concat([tf.fill([size, 1], REAL_TARGET), tf.zeros([size, 1])]);
      kept = tf.keep(accuracy(tf.slice(output.logit, [0, 0], [size, 1]), tf.slice(output.logit, [size, 0], [size, 1])));
      return ganLoss(output, targets, classes);
    },
    true,
    trainableOf(discriminator),
  )!;
  const result = { loss: loss.dataSync()[0], accuracy: kept!.dataSync()[0] };
  tf.dispose([loss, kept!]);
  return result;
}

/**
 * One generator step through the discriminator, with "real" targets (the non-saturating loss of
 * Goodfellow et al., 2014) and the classes the images were made for. The discriminator is frozen
 * because only the generator's variables are handed to the optimizer.
 */
export function generatorStep(networks: Record<string, tfl.LayersModel>, optimizer: tf.Optimizer, size: number, classCount: number, seed: () => number): number {
  const { generator, discriminator } = networks;
  const noiseDim = generator.inputs[0].shape[1] as number;
  const loss = optimizer.minimize(
    () => {
      const classes = randomClasses(size, classCount, seed);
      const fake = generator.apply(withClasses(tf.randomNormal([size, noiseDim], 0, 1, 'float32', seed()), classes), { training: true }) as tf.Tensor4D;
      return ganLoss(discriminate(discriminator, fake, true), tf.ones([size, 1]), classes);
    },
    true,
    trainableOf(generator),
  )!;
  const value = loss.dataSync()[0];
  loss.dispose();
  return value;
}

import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

import type { ImageDataset } from '../dataset/folder.js';
import { buildVae, DEFAULT_VAE_ARCHITECTURE, type VaeArchitecture, type VaeNetworks, vaeLoss, withClasses } from '../models/vae.js';
import type { GeneratorTrainOptions } from './generator-options.js';
import type { DatasetShape, GeneratorTrainingTask } from './generator-trainer.js';

export const VAE_MODEL_VERSION = '1.0.0';
/** Validation looks at this many held-out images at most, in batches of VALIDATION_BATCH. */
const VALIDATION_LIMIT = 2000;
const VALIDATION_BATCH = 250;

function architectureOf(options: GeneratorTrainOptions, shape: DatasetShape): VaeArchitecture {
  return {
    ...DEFAULT_VAE_ARCHITECTURE,
    imageSize: shape.imageSize,
    channels: shape.channels,
    classCount: shape.classes.length,
    latentDim: options.latentDim,
    filters: options.filters ?? DEFAULT_VAE_ARCHITECTURE.filters,
  };
}

function asVae(networks: Record<string, tfl.LayersModel>): VaeNetworks {
  return { encoder: networks.encoder, decoder: networks.decoder };
}

/** The conditional convolutional VAE, trained on reconstruction plus beta times KL. */
export const VAE_TRAINING: GeneratorTrainingTask = {
  kind: 'vae',
  version: VAE_MODEL_VERSION,
  build: (options, shape) => ({ ...buildVae(architectureOf(options, shape), options.seed) }),
  optimizers: (options) => ({ vae: tf.train.adam(options.learningRate) }),
  architecture: (options, shape) => ({ ...architectureOf(options, shape), beta: options.beta }),

  step(networks, optimizers, batch, seed, options) {
    const latentDim = networks.decoder.inputs[0].shape[1] as number;
    let reconstruction: tf.Scalar | undefined;
    let kl: tf.Scalar | undefined;
    const total = optimizers.vae.minimize(() => {
      const epsilon = tf.randomNormal([batch.images.shape[0], latentDim], 0, 1, 'float32', seed()) as tf.Tensor2D;
      const loss = vaeLoss(asVae(networks), batch.images, batch.oneHot, epsilon, options.beta, true);
      reconstruction = tf.keep(loss.reconstruction);
      kl = tf.keep(loss.kl);
      return loss.total;
    }, true)!;
    const values = { loss: total.dataSync()[0], reconstruction: reconstruction!.dataSync()[0], kl: kl!.dataSync()[0] };
    tf.dispose([total, reconstruction!, kl!]);
    return values;
  },

  validate(networks, validation: ImageDataset, oneHot) {
    const latentDim = networks.decoder.inputs[0].shape[1] as number;
    const count = Math.min(validation.count, VALIDATION_LIMIT);
    const pixels = validation.size * validation.size * validation.channels;
    let reconstruction = 0;
    let kl = 0;
    for (let start = 0; start < count; start += VALIDATION_BATCH) {
      const size = Math.min(VALIDATION_BATCH, count - start);
      const [r, k] = tf.tidy(() => {
        const images = tf.tensor4d(validation.images.subarray(start * pixels, (start + size) * pixels), [size, validation.size, validation.size, validation.channels]);
        const classes = oneHot(validation.labels.subarray(start, start + size));
        const epsilon = tf.randomNormal([size, latentDim], 0, 1, 'float32', 7) as tf.Tensor2D;
        const loss = vaeLoss(asVae(networks), images, classes, epsilon, 1, false);
        return [loss.reconstruction.dataSync()[0], loss.kl.dataSync()[0]];
      });
      reconstruction += r * size;
      kl += k * size;
    }
    return { val_reconstruction: reconstruction / count, val_kl: kl / count };
  },

  sample: (networks, latent, oneHot) => networks.decoder.apply(withClasses(latent, oneHot), { training: false }) as tf.Tensor4D,
};


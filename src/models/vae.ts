import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import type { Initializer } from './blocks.js';

import { DarkroomError } from '../errors.js';

/** Layer sizes of the convolutional VAE; the CLI uses the defaults, tests pass smaller ones. */
export interface VaeArchitecture {
  readonly imageSize: number;
  readonly channels: 1 | 3;
  readonly latentDim: number;
  /** Number of classes the model is conditioned on; 0 for an unconditional model. */
  readonly classCount: number;
  /** Filters of the three stride-2 convolutions of the encoder, mirrored by the decoder. */
  readonly filters: readonly [number, number, number];
  readonly hidden: number;
}

export const DEFAULT_VAE_ARCHITECTURE: Omit<VaeArchitecture, 'imageSize' | 'channels' | 'classCount'> = Object.freeze({
  latentDim: 16,
  filters: [32, 64, 128] as const,
  hidden: 256,
});

/** The image side must be a multiple of this: three stride-2 layers halve it three times. */
export const GENERATOR_SIZE_MULTIPLE = 8;

export interface VaeNetworks {
  /** [image, one-hot class?] -> [mu, logVariance] */
  readonly encoder: tfl.LayersModel;
  /** [z, one-hot class?] -> image in [0, 1] */
  readonly decoder: tfl.LayersModel;
}

export function checkImageSize(imageSize: number): void {
  if (imageSize % GENERATOR_SIZE_MULTIPLE !== 0) {
    throw new DarkroomError('INVALID_OPTION', `Expected a multiple of ${GENERATOR_SIZE_MULTIPLE} for --image-size but received ${imageSize}`);
  }
}

export function buildVae(architecture: VaeArchitecture, seed: number): VaeNetworks {
  checkImageSize(architecture.imageSize);
  const { imageSize, channels, latentDim, classCount, filters, hidden } = architecture;
  const init = (offset: number): Initializer => tfl.initializers.glorotUniform({ seed: seed + offset });
  const base = imageSize / 8;

  const image = tfl.input({ shape: [imageSize, imageSize, channels], name: 'image' });
  const encoderClass = classCount > 0 ? tfl.input({ shape: [classCount], name: 'class' }) : undefined;
  let x: tfl.SymbolicTensor = image;
  filters.forEach((count, index) => {
    x = tfl.layers.conv2d({ filters: count, kernelSize: 4, strides: 2, padding: 'same', activation: 'relu', kernelInitializer: init(index), name: `enc_conv${index + 1}` }).apply(x) as tfl.SymbolicTensor;
  });
  x = tfl.layers.flatten().apply(x) as tfl.SymbolicTensor;
  if (encoderClass !== undefined) x = tfl.layers.concatenate().apply([x, encoderClass]) as tfl.SymbolicTensor;
  x = tfl.layers.dense({ units: hidden, activation: 'relu', kernelInitializer: init(10), name: 'enc_dense' }).apply(x) as tfl.SymbolicTensor;
  const mu = tfl.layers.dense({ units: latentDim, kernelInitializer: init(11), name: 'mu' }).apply(x) as tfl.SymbolicTensor;
  // The log-variance starts near zero (unit variance), which keeps exp() finite in early steps.
  const logVariance = tfl.layers.dense({ units: latentDim, kernelInitializer: tfl.initializers.zeros(), name: 'log_variance' }).apply(x) as tfl.SymbolicTensor;
  const encoder = tfl.model({ inputs: encoderClass === undefined ? [image] : [image, encoderClass], outputs: [mu, logVariance], name: 'vae_encoder' });

  const z = tfl.input({ shape: [latentDim], name: 'z' });
  const decoderClass = classCount > 0 ? tfl.input({ shape: [classCount], name: 'class' }) : undefined;
  let y: tfl.SymbolicTensor = decoderClass === undefined ? z : (tfl.layers.concatenate().apply([z, decoderClass]) as tfl.SymbolicTensor);
  y = tfl.layers.dense({ units: base * base * filters[2], activation: 'relu', kernelInitializer: init(20), name: 'dec_dense' }).apply(y) as tfl.SymbolicTensor;
  y = tfl.layers.reshape({ targetShape: [base, base, filters[2]] }).apply(y) as tfl.SymbolicTensor;
  [filters[1], filters[0]].forEach((count, index) => {
    y = tfl.layers.conv2dTranspose({ filters: count, kernelSize: 4, strides: 2, padding: 'same', activation: 'relu', kernelInitializer: init(21 + index), name: `dec_deconv${index + 1}` }).apply(y) as tfl.SymbolicTensor;
  });
  const output = tfl.layers.conv2dTranspose({ filters: channels, kernelSize: 4, strides: 2, padding: 'same', activation: 'sigmoid', kernelInitializer: init(30), name: 'dec_output' }).apply(y) as tfl.SymbolicTensor;
  const decoder = tfl.model({ inputs: decoderClass === undefined ? [z] : [z, decoderClass], outputs: output, name: 'vae_decoder' });

  return { encoder, decoder };
}

/** Returns the network inputs: the tensor, followed by the one-hot classes when the model has classes. */
export function withClasses(tensor: tf.Tensor, oneHot: tf.Tensor | undefined): tf.Tensor[] {
  return oneHot === undefined ? [tensor] : [tensor, oneHot];
}

export interface VaeLoss {
  readonly total: tf.Scalar;
  /** Binary cross-entropy summed over the pixels of an image, mean over the batch. */
  readonly reconstruction: tf.Scalar;
  /** KL divergence from the unit Gaussian, summed over the latent, mean over the batch. */
  readonly kl: tf.Scalar;
}

/**
 * Computes the loss of one forward pass with the reparameterization trick, z = mu + sigma * epsilon, which moves
 * the sampling into an input (epsilon) so that gradients reach mu and sigma.
 */
export function vaeLoss(networks: VaeNetworks, images: tf.Tensor4D, oneHot: tf.Tensor2D | undefined, epsilon: tf.Tensor2D, beta: number, training: boolean): VaeLoss {
  const [mu, logVariance] = networks.encoder.apply(withClasses(images, oneHot), { training }) as tf.Tensor2D[];
  const z = tf.add(mu, tf.mul(tf.exp(tf.mul(logVariance, 0.5)), epsilon));
  const decoded = networks.decoder.apply(withClasses(z, oneHot), { training }) as tf.Tensor4D;

  // Cross-entropy on clipped probabilities: log(0) of a saturated sigmoid would give NaN.
  const clipped = tf.clipByValue(decoded, 1e-6, 1 - 1e-6);
  const perPixel = tf.neg(tf.add(tf.mul(images, tf.log(clipped)), tf.mul(tf.sub(1, images), tf.log(tf.sub(1, clipped)))));
  const reconstruction = tf.mean(tf.sum(perPixel, [1, 2, 3])) as tf.Scalar;
  const kl = tf.mean(tf.mul(-0.5, tf.sum(tf.sub(tf.sub(tf.add(1, logVariance), tf.square(mu)), tf.exp(logVariance)), 1))) as tf.Scalar;
  return { total: tf.add(reconstruction, tf.mul(beta, kl)) as tf.Scalar, reconstruction, kl };
}

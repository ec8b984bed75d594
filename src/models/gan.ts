import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import type { Initializer } from './blocks.js';
import { MinibatchStddevLayer } from './layers.js';

import { checkImageSize } from './vae.js';

/** Layer sizes of the DCGAN; the CLI uses the defaults, tests pass smaller ones. */
export interface GanArchitecture {
  readonly imageSize: number;
  readonly channels: 1 | 3;
  readonly noiseDim: number;
  readonly classCount: number;
  /** Filters of the generator's layers from the smallest feature map up; the discriminator mirrors them. */
  readonly filters: readonly [number, number, number];
}

export const DEFAULT_GAN_ARCHITECTURE: Omit<GanArchitecture, 'imageSize' | 'channels' | 'classCount'> = Object.freeze({
  noiseDim: 64,
  filters: [128, 64, 32] as const,
});

/**
 * Dropout in the discriminator slows it down enough that the generator keeps receiving useful
 * gradients. It takes no seed, because tfjs draws a seeded dropout mask from the same seed on
 * every call. The mask would then be fixed per batch position. Real images always fill the first
 * half of the batch, so the discriminator would learn the positions instead of real and fake.
 */
const DISCRIMINATOR_DROPOUT = 0.3;

/** Images per minibatch-deviation group; batches must contain a multiple of it for groups to stay apart. */
export const MINIBATCH_GROUP = 4;

export interface GanNetworks {
  /** [noise, one-hot class?] -> image in [-1, 1] */
  readonly generator: tfl.LayersModel;
  /** image in [-1, 1] -> logit of "real", and class logits when the model has classes */
  readonly discriminator: tfl.LayersModel;
}

/**
 * Builds a DCGAN as in Radford, Metz and Chintala (2016): transposed convolutions with batch
 * normalisation in the generator, strided convolutions with leaky ReLU in the discriminator.
 * The class enters the generator beside the noise. The discriminator of a conditional model
 * also predicts the class, as in the AC-GAN of Odena, Olah and Shlens (2017). A discriminator
 * that is merely given the class can ignore it, and then so does the generator. With the class
 * fed in as an extra image plane, the generator drew one image for every class and noise vector.
 */
export function buildGan(architecture: GanArchitecture, seed: number): GanNetworks {
  checkImageSize(architecture.imageSize);
  const { imageSize, channels, noiseDim, classCount, filters } = architecture;
  const init = (offset: number): Initializer => tfl.initializers.randomNormal({ mean: 0, stddev: 0.02, seed: seed + offset });
  const base = imageSize / 8;

  const noise = tfl.input({ shape: [noiseDim], name: 'noise' });
  const generatorClass = classCount > 0 ? tfl.input({ shape: [classCount], name: 'class' }) : undefined;
  let g: tfl.SymbolicTensor = generatorClass === undefined ? noise : (tfl.layers.concatenate().apply([noise, generatorClass]) as tfl.SymbolicTensor);
  g = tfl.layers.dense({ units: base * base * filters[0], useBias: false, kernelInitializer: init(0), name: 'gen_dense' }).apply(g) as tfl.SymbolicTensor;
  g = tfl.layers.batchNormalization({ name: 'gen_bn0' }).apply(g) as tfl.SymbolicTensor;
  g = tfl.layers.leakyReLU({ alpha: 0.2 }).apply(g) as tfl.SymbolicTensor;
  g = tfl.layers.reshape({ targetShape: [base, base, filters[0]] }).apply(g) as tfl.SymbolicTensor;
  [filters[1], filters[2]].forEach((count, index) => {
    g = tfl.layers.conv2dTranspose({ filters: count, kernelSize: 4, strides: 2, padding: 'same', useBias: false, kernelInitializer: init(1 + index), name: `gen_deconv${index + 1}` }).apply(g) as tfl.SymbolicTensor;
    g = tfl.layers.batchNormalization({ name: `gen_bn${index + 1}` }).apply(g) as tfl.SymbolicTensor;
    g = tfl.layers.leakyReLU({ alpha: 0.2 }).apply(g) as tfl.SymbolicTensor;
  });
  const image = tfl.layers.conv2dTranspose({ filters: channels, kernelSize: 4, strides: 2, padding: 'same', activation: 'tanh', kernelInitializer: init(5), name: 'gen_output' }).apply(g) as tfl.SymbolicTensor;
  const generator = tfl.model({ inputs: generatorClass === undefined ? [noise] : [noise, generatorClass], outputs: image, name: 'gan_generator' });

  const input = tfl.input({ shape: [imageSize, imageSize, channels], name: 'image' });
  let d: tfl.SymbolicTensor = input;
  [filters[2], filters[1], filters[0]].forEach((count, index) => {
    if (index === 2) d = new MinibatchStddevLayer({ groupSize: MINIBATCH_GROUP, name: 'disc_minibatch_stddev' }).apply(d) as tfl.SymbolicTensor;
    d = tfl.layers.conv2d({ filters: count, kernelSize: 4, strides: 2, padding: 'same', kernelInitializer: init(11 + index), name: `disc_conv${index + 1}` }).apply(d) as tfl.SymbolicTensor;
    d = tfl.layers.leakyReLU({ alpha: 0.2 }).apply(d) as tfl.SymbolicTensor;
    d = tfl.layers.dropout({ rate: DISCRIMINATOR_DROPOUT }).apply(d) as tfl.SymbolicTensor;
  });
  d = tfl.layers.flatten().apply(d) as tfl.SymbolicTensor;
  const logit = tfl.layers.dense({ units: 1, kernelInitializer: init(20), name: 'disc_logit' }).apply(d) as tfl.SymbolicTensor;
  const classLogits = classCount > 0 ? (tfl.layers.dense({ units: classCount, kernelInitializer: init(21), name: 'disc_class_logits' }).apply(d) as tfl.SymbolicTensor) : undefined;
  const discriminator = tfl.model({ inputs: input, outputs: classLogits === undefined ? logit : [logit, classLogits], name: 'gan_discriminator' });

  return { generator, discriminator };
}

/** Maps generator output in [-1, 1] to pixel values in [0, 1]. */
export function toUnitRange(images: tf.Tensor): tf.Tensor {
  return tf.mul(tf.add(images, 1), 0.5);
}

/** Maps pixel values in [0, 1] to the generator's range [-1, 1]. */
export function toSignedRange(images: tf.Tensor): tf.Tensor {
  return tf.sub(tf.mul(images, 2), 1);
}

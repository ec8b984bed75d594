import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

import { resolveGeneratorTrainOptions } from '../src/train/generator-options.js';
import type { GeneratorTrainingTask } from '../src/train/generator-trainer.js';
import { GAN_TRAINING } from '../src/train/gan.js';
import { SeededRandom } from '../src/train/random.js';
import { VAE_TRAINING } from '../src/train/vae.js';

export interface GeneratorTiming {
  readonly kind: string;
  readonly imageSize: number;
  readonly generationImagesPerSecond: number;
  readonly trainingBatchSize: number;
  readonly trainingSecondsPerStep: number;
  readonly trainingImagesPerSecond: number;
}

/** The shape of the shipped generators: Fashion-MNIST at 32x32, grey, ten classes. */
const SHAPE = { imageSize: 32, channels: 1 as const, classes: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'] };
const BATCH = 64;

/**
 * Times generation and one training step of the VAE and the GAN with their default layers.
 * Speed does not depend on the weights, so freshly built networks stand in for trained ones.
 */
export async function timeGenerators(): Promise<GeneratorTiming[]> {
  const timings: GeneratorTiming[] = [];
  for (const task of [VAE_TRAINING, GAN_TRAINING]) timings.push(await timeGenerator(task));
  return timings;
}

async function timeGenerator(task: GeneratorTrainingTask): Promise<GeneratorTiming> {
  const options = resolveGeneratorTrainOptions(task.kind, { data: 'unused', out: 'unused' });
  const networks: Record<string, tfl.LayersModel> = task.build(options, SHAPE);
  const optimizers = task.optimizers(options);
  const random = new SeededRandom(1);
  const pixels = SHAPE.imageSize * SHAPE.imageSize;
  const images = tf.tensor4d(Float32Array.from({ length: BATCH * pixels }, () => random.next()), [BATCH, SHAPE.imageSize, SHAPE.imageSize, 1]);
  const oneHot = tf.cast(tf.oneHot(tf.tensor1d(Int32Array.from({ length: BATCH }, (_, index) => index % 10), 'int32'), 10), 'float32') as tf.Tensor2D;
  const seed = (): number => random.nextInt(2 ** 31);

  const step = (): void => {
    task.step(networks, optimizers, { images, oneHot }, seed, options);
  };
  step();
  step();
  const repeats = 5;
  let started = performance.now();
  for (let index = 0; index < repeats; index++) step();
  const trainingSecondsPerStep = (performance.now() - started) / 1000 / repeats;

  const sampleBatch = 256;
  const latent = tf.randomNormal([sampleBatch, options.latentDim], 0, 1, 'float32', 1) as tf.Tensor2D;
  const classes = tf.cast(tf.oneHot(tf.tensor1d(Int32Array.from({ length: sampleBatch }, (_, index) => index % 10), 'int32'), 10), 'float32') as tf.Tensor2D;
  const sample = async (): Promise<void> => {
    const output = task.sample(networks, latent, classes);
    await output.data();
    output.dispose();
  };
  await sample();
  started = performance.now();
  for (let index = 0; index < repeats; index++) await sample();
  const generationImagesPerSecond = (repeats * sampleBatch) / ((performance.now() - started) / 1000);

  tf.dispose([images, oneHot, latent, classes]);
  return { kind: task.kind, imageSize: SHAPE.imageSize, generationImagesPerSecond, trainingBatchSize: BATCH, trainingSecondsPerStep, trainingImagesPerSecond: BATCH / trainingSecondsPerStep };
}

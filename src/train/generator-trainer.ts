import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import path from 'node:path';

import { type ImageDataset, loadImageDataset } from '../dataset/folder.js';
import { isTestItem } from '../dataset/slice.js';
import { DarkroomError } from '../errors.js';
import { writeGrid } from '../generate/grid.js';
import type { Logger } from '../log.js';
import { type GeneratorKind, type GeneratorMetadata, saveGenerator } from '../models/generator-storage.js';
import { GENERATOR_SIZE_MULTIPLE } from '../models/vae.js';
import type { GeneratorTrainOptions } from './generator-options.js';
import { type NetworkRun, trainNetworks } from './network-trainer.js';
import { permutation, SeededRandom } from './random.js';
import { countOf } from '../text.js';

/** A training batch: images in [0, 1], and their one-hot classes when the model has classes. */
export interface GeneratorBatch {
  readonly images: tf.Tensor4D;
  readonly oneHot: tf.Tensor2D | undefined;
}

/** The parts of training that differ between generator kinds, plugged into the shared loop of network-trainer.ts. */
export interface GeneratorTrainingTask {
  readonly kind: GeneratorKind;
  readonly version: string;
  build(options: GeneratorTrainOptions, shape: DatasetShape): Record<string, tfl.LayersModel>;
  /** One optimizer per name; `step` decides which network each one trains. */
  optimizers(options: GeneratorTrainOptions): Record<string, tf.Optimizer>;
  /** One optimization step; returns the losses and metrics to average over the epoch. */
  step(networks: Record<string, tfl.LayersModel>, optimizers: Record<string, tf.Optimizer>, batch: GeneratorBatch, seed: () => number, options: GeneratorTrainOptions): Record<string, number>;
  /** Metrics on the held-out images after each epoch. */
  validate(networks: Record<string, tfl.LayersModel>, validation: ImageDataset, oneHot: (labels: Int32Array) => tf.Tensor2D | undefined): Record<string, number>;
  /** Images in [0, 1] from latent or noise vectors and classes, for previews and `generate`. */
  sample(networks: Record<string, tfl.LayersModel>, latent: tf.Tensor2D, oneHot: tf.Tensor2D | undefined): tf.Tensor4D;
  architecture(options: GeneratorTrainOptions, shape: DatasetShape): Record<string, unknown>;
}

export interface DatasetShape {
  readonly imageSize: number;
  readonly channels: 1 | 3;
  readonly classes: readonly string[];
}

/** Preview grids show this many samples per class (or in all, without classes), from fixed noise. */
const PREVIEW_COLUMNS = 8;

/**
 * Trains a VAE or a GAN on a folder of images: one pass over the shuffled training images per
 * epoch, metrics and a preview grid from fixed noise after each epoch, a checkpoint of every
 * network and optimizer, --resume, and a clean stop on Ctrl-C between steps (the loop of
 * network-trainer.ts).
 */
export async function trainGenerator(task: GeneratorTrainingTask, options: GeneratorTrainOptions, context: { log: Logger; backend: string; signal?: AbortSignal }): Promise<{ interrupted: boolean; metrics: Record<string, number> }> {
  const settings = { ...options, kind: task.kind, data: path.resolve(options.data), dataLabel: '--data', options: { ...options } };
  return trainNetworks(settings, async () => generatorRun(task, options, context), context);
}

async function generatorRun(task: GeneratorTrainingTask, options: GeneratorTrainOptions, context: { log: Logger; backend: string }): Promise<NetworkRun> {
  const { log } = context;
  const all = await loadImageDataset(options.data, { size: options.imageSize, channels: options.channels, limitPerClass: options.maxImagesPerClass }, log);
  const { train, validation } = splitDataset(all, options.validationFraction);
  const shape: DatasetShape = { imageSize: all.size, channels: all.channels, classes: all.classes };
  const classCount = all.classes.length;
  const batchSize = Math.min(options.batchSize, train.count);
  const stepsPerEpoch = options.stepsPerEpoch ?? Math.ceil(train.count / batchSize);
  log.info(
    `Training a ${classCount > 0 ? `conditional ${task.kind} on ${classCount} classes` : task.kind} with ${train.count} images ` +
      `(${validation.count} held out for validation), batch ${batchSize}, ${countOf(stepsPerEpoch, 'step')} per epoch, ${countOf(options.epochs, 'epoch')}`,
  );

  const oneHot = (labels: Int32Array): tf.Tensor2D | undefined => (classCount === 0 ? undefined : tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), classCount), 'float32') as tf.Tensor2D));
  const previewLatent = fixedLatent(options.latentDim, classCount, options.seed);
  const pixels = all.size * all.size * all.channels;
  let order: Uint32Array = new Uint32Array(0);

  const metadataFor = (epochs: number, metrics: Record<string, number>, seconds: number): GeneratorMetadata => ({
    format: 'darkroom-model',
    formatVersion: 1,
    task: task.kind,
    version: task.version,
    createdAt: new Date().toISOString(),
    sizeMultiple: GENERATOR_SIZE_MULTIPLE,
    inputChannels: all.channels,
    architecture: task.architecture(options, shape),
    generator: { imageSize: all.size, channels: all.channels, classes: all.classes, latentDim: options.latentDim },
    training: {
      dataDir: path.resolve(options.data),
      images: train.count,
      validationImages: validation.count,
      batchSize,
      steps: epochs * stepsPerEpoch,
      epochs,
      seconds: Math.round(seconds),
      backend: context.backend,
      seed: options.seed,
    },
    validation: metrics,
  });

  return {
    stepsPerEpoch,
    build: () => task.build(options, shape),
    optimizers: () => task.optimizers(options),
    beginEpoch: (random) => {
      order = permutation(train.count, random);
    },
    step(networks, optimizers, step, random) {
      const indices = Array.from({ length: batchSize }, (_, index) => order[(step * batchSize + index) % order.length]);
      const batchPixels = new Float32Array(batchSize * pixels);
      indices.forEach((item, index) => batchPixels.set(train.images.subarray(item * pixels, (item + 1) * pixels), index * pixels));
      const batch: GeneratorBatch = {
        images: tf.tensor4d(batchPixels, [batchSize, all.size, all.size, all.channels]),
        oneHot: oneHot(Int32Array.from(indices, (item) => train.labels[item])),
      };
      const metrics = task.step(networks, optimizers, batch, () => random.nextInt(2 ** 31), options);
      tf.dispose([batch.images, ...(batch.oneHot === undefined ? [] : [batch.oneHot])]);
      return metrics;
    },
    validate: (networks) => (validation.count > 0 ? task.validate(networks, validation, oneHot) : {}),
    preview: (networks, file) => writePreview(task, networks, previewLatent, shape, file),
    metadata: metadataFor,
    save: (networks, metadata) => saveGenerator(options.out, networks, metadata as GeneratorMetadata),
  };
}

/** Splits off every 1/fraction-th image of each class for validation, so that each class keeps its share. */
export function splitDataset(dataset: ImageDataset, fraction: number): { train: ImageDataset; validation: ImageDataset } {
  const seen = new Map<number, number>();
  const trainIndices: number[] = [];
  const validationIndices: number[] = [];
  for (let index = 0; index < dataset.count; index++) {
    const label = dataset.labels[index];
    const position = seen.get(label) ?? 0;
    seen.set(label, position + 1);
    (fraction > 0 && isTestItem(position, fraction) ? validationIndices : trainIndices).push(index);
  }
  if (trainIndices.length === 0) throw new DarkroomError('INVALID_INPUT', `No images are left for training after holding out ${fraction} of them; lower --validation-fraction`);
  return { train: subset(dataset, trainIndices), validation: subset(dataset, validationIndices) };
}

export function subset(dataset: ImageDataset, indices: readonly number[]): ImageDataset {
  const pixels = dataset.size * dataset.size * dataset.channels;
  const images = new Float32Array(indices.length * pixels);
  indices.forEach((item, index) => images.set(dataset.images.subarray(item * pixels, (item + 1) * pixels), index * pixels));
  return {
    ...dataset,
    count: indices.length,
    images,
    labels: Int32Array.from(indices, (item) => dataset.labels[item]),
    files: indices.map((item) => dataset.files[item]),
  };
}

/** Latent vectors drawn once from the seed, so that every epoch's preview shows the same samples. */
function fixedLatent(latentDim: number, classCount: number, seed: number): { latent: Float32Array; labels: Int32Array; count: number } {
  const random = new SeededRandom(seed ^ 0x5eed);
  const rows = Math.max(1, Math.min(classCount, 10));
  const count = rows * PREVIEW_COLUMNS;
  const latent = Float32Array.from({ length: count * latentDim }, () => random.nextGaussian());
  const labels = Int32Array.from({ length: count }, (_, index) => (classCount === 0 ? -1 : Math.floor(index / PREVIEW_COLUMNS)));
  return { latent, labels, count };
}

async function writePreview(task: GeneratorTrainingTask, networks: Record<string, tfl.LayersModel>, fixed: ReturnType<typeof fixedLatent>, shape: DatasetShape, file: string): Promise<void> {
  const latentDim = fixed.latent.length / fixed.count;
  const images = tf.tidy(() => {
    const oneHot = shape.classes.length === 0 ? undefined : (tf.cast(tf.oneHot(tf.tensor1d(fixed.labels, 'int32'), shape.classes.length), 'float32') as tf.Tensor2D);
    return task.sample(networks, tf.tensor2d(fixed.latent, [fixed.count, latentDim]), oneHot);
  });
  const pixels = (await images.data()) as Float32Array;
  images.dispose();
  await writeGrid(file, { count: fixed.count, size: shape.imageSize, channels: shape.channels, pixels }, { columns: PREVIEW_COLUMNS, scale: 2 });
}

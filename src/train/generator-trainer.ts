import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { access, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { type ImageDataset, loadImageDataset } from '../dataset/folder.js';
import { isTestItem } from '../dataset/slice.js';
import { DarkroomError } from '../errors.js';
import { writeGrid } from '../generate/grid.js';
import type { Logger } from '../log.js';
import { type GeneratorKind, type GeneratorMetadata, saveGenerator } from '../models/generator-storage.js';
import { loadModel, saveModel } from '../models/storage.js';
import { GENERATOR_SIZE_MULTIPLE } from '../models/vae.js';
import { ProgressBar } from '../progress.js';
import type { GeneratorTrainOptions } from './generator-options.js';
import { readOptimizerWeights, writeOptimizerWeights } from './checkpoint.js';
import { cosineSchedule, setLearningRate } from './loop.js';
import { rejectChangedOptions } from './trainer.js';
import { permutation, SeededRandom } from './random.js';

/** A training batch: images in [0, 1], and their one-hot classes when the model has classes. */
export interface GeneratorBatch {
  readonly images: tf.Tensor4D;
  readonly oneHot: tf.Tensor2D | undefined;
}

/** The parts of training that differ between generator kinds, plugged into the shared loop below. */
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

interface GeneratorState {
  readonly kind: GeneratorKind;
  readonly data: string;
  readonly epoch: number;
  readonly randomState: number;
  readonly elapsedSeconds: number;
  readonly history: readonly Readonly<Record<string, number>>[];
  readonly options: Readonly<Record<string, unknown>>;
}

const CHECKPOINT = 'checkpoint';
const STATE_FILE = 'state.json';
/** Preview grids show this many samples per class (or in all, without classes), from fixed noise. */
const PREVIEW_COLUMNS = 8;

/**
 * Trains a VAE or a GAN on a folder of images: one pass over the shuffled training images per
 * epoch, metrics and a preview grid from fixed noise after each epoch, a checkpoint of every
 * network and optimizer, --resume, and a clean stop on Ctrl-C between steps.
 */
export async function trainGenerator(task: GeneratorTrainingTask, options: GeneratorTrainOptions, context: { log: Logger; backend: string; signal?: AbortSignal }): Promise<{ interrupted: boolean; metrics: Record<string, number> }> {
  const { log } = context;
  const checkpointDir = path.join(options.out, CHECKPOINT);
  if (!options.resume && !options.overwrite && (await exists(path.join(options.out, 'darkroom.json')) || await exists(path.join(checkpointDir, STATE_FILE)))) {
    throw new DarkroomError('USAGE', `${options.out} already contains a model or checkpoint; add --resume to continue its training, or --overwrite to start over and replace it`);
  }
  const state = options.resume ? await readState(checkpointDir) : undefined;
  if (options.resume && state === undefined) throw new DarkroomError('INVALID_INPUT', `No checkpoint to resume in ${checkpointDir}; run without --resume to start over`);
  if (state !== undefined && state.kind !== task.kind) throw new DarkroomError('INVALID_INPUT', `The checkpoint in ${options.out} is for a ${state.kind}, not a ${task.kind}`);
  if (state !== undefined && state.data !== path.resolve(options.data)) {
    throw new DarkroomError('USAGE', `The checkpoint in ${options.out} was trained on --data ${state.data}, not ${path.resolve(options.data)}; resume with the same data, or start over with --overwrite`);
  }
  if (state?.options !== undefined) rejectChangedOptions(state.options, options as unknown as Record<string, unknown>, options.out);

  const all = await loadImageDataset(options.data, { size: options.imageSize, channels: options.channels, limitPerClass: options.maxImagesPerClass }, log);
  const { train, validation } = splitDataset(all, options.validationFraction);
  const shape: DatasetShape = { imageSize: all.size, channels: all.channels, classes: all.classes };
  const classCount = all.classes.length;
  const batchSize = Math.min(options.batchSize, train.count);
  const stepsPerEpoch = options.stepsPerEpoch ?? Math.ceil(train.count / batchSize);
  log.info(
    `Training a ${classCount > 0 ? `conditional ${task.kind} on ${classCount} classes` : task.kind} with ${train.count} images ` +
      `(${validation.count} held out for validation), batch ${batchSize}, ${stepsPerEpoch} steps per epoch, ${options.epochs} epochs`,
  );

  const random = new SeededRandom(options.seed);
  let networks: Record<string, tfl.LayersModel>;
  const optimizers = task.optimizers(options);
  let startEpoch = 0;
  let history: Record<string, number>[] = [];
  let elapsedBefore = 0;
  if (state !== undefined) {
    networks = {};
    for (const name of Object.keys(task.build(options, shape))) networks[name] = (await loadModel(path.join(checkpointDir, name))).model;
    for (const [name, optimizer] of Object.entries(optimizers)) await optimizer.setWeights(await readOptimizerWeights(...optimizerFiles(checkpointDir, name)));
    startEpoch = state.epoch;
    random.currentState = state.randomState;
    history = [...state.history];
    elapsedBefore = state.elapsedSeconds;
    log.info(`Resuming from the checkpoint after epoch ${startEpoch} of ${options.epochs}`);
  } else {
    networks = task.build(options, shape);
  }

  const oneHot = (labels: Int32Array): tf.Tensor2D | undefined => (classCount === 0 ? undefined : tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), classCount), 'float32') as tf.Tensor2D));
  const previewLatent = fixedLatent(options.latentDim, classCount, options.seed);
  const started = performance.now();
  const elapsed = (): number => elapsedBefore + (performance.now() - started) / 1000;
  const totalSteps = options.epochs * stepsPerEpoch;
  const schedule = cosineSchedule(options.learningRate, 0.1);
  const progress = new ProgressBar({ label: `train ${task.kind}`, total: totalSteps, unit: 'step' });
  progress.resumeFrom(startEpoch * stepsPerEpoch);
  const pixels = all.size * all.size * all.channels;
  let lastMetrics: Record<string, number> = history.at(-1) ?? {};

  const metadataFor = (epochs: number, metrics: Record<string, number>): GeneratorMetadata => ({
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
      seconds: Math.round(elapsed()),
      backend: context.backend,
      seed: options.seed,
    },
    validation: metrics,
  });
  const saveCheckpoint = async (epoch: number): Promise<void> => {
    await mkdir(checkpointDir, { recursive: true });
    for (const [name, network] of Object.entries(networks)) await saveModel(network, path.join(checkpointDir, name), metadataFor(epoch, lastMetrics) as never);
    for (const [name, optimizer] of Object.entries(optimizers)) await writeOptimizerWeights(optimizer, ...optimizerFiles(checkpointDir, name));
    const stateData: GeneratorState = { kind: task.kind, data: path.resolve(options.data), epoch, randomState: random.currentState, elapsedSeconds: elapsed(), history, options: { ...options } };
    const temporary = path.join(checkpointDir, `.${STATE_FILE}.tmp`);
    await writeFile(temporary, JSON.stringify(stateData, null, 2));
    await rename(temporary, path.join(checkpointDir, STATE_FILE));
  };

  for (let epoch = startEpoch; epoch < options.epochs; epoch++) {
    const epochStarted = performance.now();
    const order = permutation(train.count, random);
    const sums: Record<string, number> = {};

    for (let step = 0; step < stepsPerEpoch; step++) {
      if (context.signal?.aborted) {
        progress.finish();
        log.info(`Stopping in epoch ${epoch + 1}: the checkpoint keeps the weights of the finished steps, and --resume starts epoch ${epoch + 1} again`);
        await saveCheckpoint(epoch);
        log.info(`Checkpoint saved in ${checkpointDir}; continue with the same command and --resume`);
        return { interrupted: true, metrics: lastMetrics };
      }

      setLearningRates(optimizers, schedule((epoch * stepsPerEpoch + step) / totalSteps));
      const indices = Array.from({ length: batchSize }, (_, index) => order[(step * batchSize + index) % order.length]);
      const batchPixels = new Float32Array(batchSize * pixels);
      indices.forEach((item, index) => batchPixels.set(train.images.subarray(item * pixels, (item + 1) * pixels), index * pixels));
      const batch: GeneratorBatch = {
        images: tf.tensor4d(batchPixels, [batchSize, all.size, all.size, all.channels]),
        oneHot: oneHot(Int32Array.from(indices, (item) => train.labels[item])),
      };
      const metrics = task.step(networks, optimizers, batch, () => random.nextInt(2 ** 31), options);
      tf.dispose([batch.images, ...(batch.oneHot === undefined ? [] : [batch.oneHot])]);
      for (const [key, value] of Object.entries(metrics)) {
        if (!Number.isFinite(value)) throw new Error(`Training diverged: ${key} became ${value} at epoch ${epoch + 1}, step ${step + 1}; lower --learning-rate`);
        sums[key] = (sums[key] ?? 0) + value;
      }
      progress.update(epoch * stepsPerEpoch + step + 1, { epoch: `${epoch + 1}/${options.epochs}`, ...means(sums, step + 1) });
      // Yielding to the event loop lets a pending SIGINT reach the abort signal.
      await new Promise((resolve) => setImmediate(resolve));
    }

    const validationMetrics = validation.count > 0 ? task.validate(networks, validation, oneHot) : {};
    lastMetrics = { ...means(sums, stepsPerEpoch), ...validationMetrics };
    const seconds = (performance.now() - epochStarted) / 1000;
    history.push({ epoch: epoch + 1, seconds, ...lastMetrics });
    log.info(`epoch ${epoch + 1}/${options.epochs}: ${formatMetrics(lastMetrics)} (${seconds.toFixed(0)} s)`);
    await writePreview(task, networks, previewLatent, shape, path.join(options.out, 'previews', `epoch-${String(epoch + 1).padStart(3, '0')}.png`));
    await saveCheckpoint(epoch + 1);
  }
  progress.finish();

  await saveGenerator(options.out, networks, metadataFor(options.epochs, lastMetrics));
  log.info(`Saved the ${task.kind} to ${options.out} after ${(elapsed() / 60).toFixed(1)} min; previews of each epoch are in ${path.join(options.out, 'previews')}`);
  return { interrupted: false, metrics: lastMetrics };
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
  await mkdir(path.dirname(file), { recursive: true });
  await writeGrid(file, { count: fixed.count, size: shape.imageSize, channels: shape.channels, pixels }, { columns: PREVIEW_COLUMNS, scale: 2 });
}

function setLearningRates(optimizers: Record<string, tf.Optimizer>, rate: number): void {
  for (const optimizer of Object.values(optimizers)) setLearningRate(optimizer, rate);
}

function means(sums: Record<string, number>, count: number): Record<string, number> {
  return Object.fromEntries(Object.entries(sums).map(([key, value]) => [key, value / count]));
}

function formatMetrics(metrics: Record<string, number>): string {
  return Object.entries(metrics).map(([key, value]) => `${key} ${Math.abs(value) >= 100 ? value.toFixed(1) : value.toFixed(3)}`).join(', ');
}

function optimizerFiles(dir: string, name: string): [string, string] {
  return [path.join(dir, `${name}.optimizer.bin`), path.join(dir, `${name}.optimizer.json`)];
}

async function readState(dir: string): Promise<GeneratorState | undefined> {
  try {
    return JSON.parse(await readFile(path.join(dir, STATE_FILE), 'utf8')) as GeneratorState;
  } catch {
    return undefined;
  }
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(() => true, () => false);
}

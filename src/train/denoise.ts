import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { access, mkdir } from 'node:fs/promises';
import path from 'node:path';

import { DarkroomError, invalidOption } from '../errors.js';
import { psnr } from '../eval/metrics.js';
import type { Logger } from '../log.js';
import { buildDenoiser, type DenoiseArchitecture, DENOISE_SIZE_MULTIPLE, denoiseBatch, validateArchitecture } from '../models/denoise.js';
import type { ModelMetadata } from '../models/metadata.js';
import { saveModel } from '../models/storage.js';
import { loadCheckpoint, saveCheckpoint, type TrainingState } from './checkpoint.js';
import { cosineSchedule, runTrainLoop } from './loop.js';
import { addBlindNoise, addGaussianNoise } from './noise.js';
import { listPhotos, loadPhotos, splitByName, type TrainingPhoto } from './photos.js';
import { centreCrop, samplePatches } from './patches.js';
import { SeededRandom } from './random.js';
import { type CommonTrainOptions, type RawOptions, readInteger, readNumber, resolveCommonTrainOptions } from './options.js';

export interface DenoiseTrainOptions extends CommonTrainOptions {
  readonly patchSize: number;
  readonly minSigma: number;
  readonly maxSigma: number;
  readonly maxSide: number;
  readonly validationCrop: number;
  /** Layer widths; the CLI always uses the defaults, tests pass smaller ones. */
  readonly architecture: DenoiseArchitecture;
}

export const DENOISE_MODEL_VERSION = '1.0.0';

/** Noise levels (0-255 scale) at which validation PSNR is reported each epoch. */
const VALIDATION_SIGMAS = [15, 25, 50] as const;

export function resolveDenoiseTrainOptions(raw: RawOptions): Readonly<DenoiseTrainOptions> {
  const common = resolveCommonTrainOptions(raw, { epochs: 30, stepsPerEpoch: 50, batchSize: 16, learningRate: 1e-3 });
  const patchSize = readInteger(raw, 'patchSize', 64, 16, 512);
  if (patchSize % DENOISE_SIZE_MULTIPLE !== 0) throw invalidOption(`a multiple of ${DENOISE_SIZE_MULTIPLE}`, '--patch-size', patchSize);
  const minSigma = readNumber(raw, 'minSigma', 0, 0, 255);
  const maxSigma = readNumber(raw, 'maxSigma', 50, 0, 255);
  if (maxSigma < minSigma) throw invalidOption(`a number of at least --min-sigma (${minSigma})`, '--max-sigma', maxSigma);

  return Object.freeze({
    ...common,
    patchSize,
    minSigma,
    maxSigma,
    maxSide: readInteger(raw, 'maxSide', 1536, 64, 100_000),
    validationCrop: readInteger(raw, 'validationCrop', 256, 16, 4096),
    architecture: validateArchitecture((raw.architecture ?? {}) as Partial<DenoiseArchitecture>),
  });
}

/**
 * Trains the blind denoiser on random patches of the photos in `options.data`, with Gaussian
 * noise synthesised per batch, validation PSNR each epoch on held-out photos, a checkpoint each
 * epoch, and the final model saved to `options.out`.
 */
export async function trainDenoise(options: Readonly<DenoiseTrainOptions>, context: { log: Logger; backend: string; signal?: AbortSignal }): Promise<{ interrupted: boolean; metrics: Record<string, number> }> {
  const { log } = context;
  const files = await listPhotos(options.data);
  if (files.length === 0) {
    throw new DarkroomError('INVALID_INPUT', `No photos (.jpg, .png, .webp, .tif, .avif) found in ${options.data}`, { file: options.data });
  }

  const split = splitByName(files, options.validationFraction);
  const trainPhotos = await loadPhotos(split.train, options.maxSide, log);
  const validationPhotos = await loadPhotos(split.validation, options.maxSide, log);
  if (trainPhotos.length === 0) throw new DarkroomError('INVALID_INPUT', `None of the photos in ${options.data} could be decoded`, { file: options.data });
  log.info(`Training on ${trainPhotos.length} photos, validating on ${validationPhotos.length} (${validationPhotos.map((p) => p.name).join(', ') || 'none'})`);
  log.info(`Photos larger than ${options.maxSide} px on the long side are scaled down; patches ${options.patchSize}x${options.patchSize}, batch ${options.batchSize}, noise sigma ${options.minSigma}-${options.maxSigma}`);

  const random = new SeededRandom(options.seed);
  const optimizer = tf.train.adam(options.learningRate);
  let model: tfl.LayersModel;
  let startEpoch = 0;
  let history: Record<string, number>[] = [];
  let elapsedBefore = 0;

  const checkpoint = options.resume ? await loadCheckpoint(options.out) : undefined;
  if (!options.resume && !options.overwrite && (await hasTrainingOutput(options.out))) {
    throw new DarkroomError(
      'USAGE',
      `${options.out} already contains a model or checkpoint; add --resume to continue its training, or --overwrite to start over and replace it`,
    );
  }
  if (options.resume && checkpoint === undefined) {
    throw new DarkroomError('INVALID_INPUT', `No checkpoint to resume in ${path.join(options.out, 'checkpoint')}; run without --resume to start over`);
  }
  if (checkpoint !== undefined) {
    if (checkpoint.state.task !== 'denoise') throw new DarkroomError('INVALID_INPUT', `The checkpoint in ${options.out} is for "${checkpoint.state.task}", not denoise`);
    model = checkpoint.model;
    await optimizer.setWeights(checkpoint.optimizerWeights);
    startEpoch = checkpoint.state.epoch;
    random.currentState = checkpoint.state.randomState;
    history = [...checkpoint.state.history];
    elapsedBefore = checkpoint.state.elapsedSeconds;
    log.info(`Resuming from the checkpoint after epoch ${startEpoch} of ${options.epochs}`);
  } else {
    model = buildDenoiser(options.architecture, options.seed);
  }

  await mkdir(options.out, { recursive: true });
  const started = performance.now();
  const elapsed = (): number => elapsedBefore + (performance.now() - started) / 1000;
  const patchValues = options.patchSize * options.patchSize * 3;
  const validationCrops = validationPhotos.map((photo) => centreCrop(photo, options.validationCrop, DENOISE_SIZE_MULTIPLE));

  const metadataFor = (epochs: number, validation: Record<string, number>): ModelMetadata => ({
    format: 'darkroom-model',
    formatVersion: 1,
    task: 'denoise',
    version: DENOISE_MODEL_VERSION,
    createdAt: new Date().toISOString(),
    sizeMultiple: DENOISE_SIZE_MULTIPLE,
    inputChannels: 3,
    architecture: { name: 'residual-unet-autoencoder', ...options.architecture },
    training: {
      dataDir: path.resolve(options.data),
      files: { train: trainPhotos.map((p) => p.name), validation: validationPhotos.map((p) => p.name) },
      patchSize: options.patchSize,
      batchSize: options.batchSize,
      steps: epochs * options.stepsPerEpoch,
      epochs,
      seconds: Math.round(elapsed()),
      backend: context.backend,
      noiseSigmaRange: [options.minSigma, options.maxSigma],
    },
    validation,
  });

  const stateFor = (epoch: number): TrainingState => ({
    task: 'denoise',
    epoch,
    step: epoch * options.stepsPerEpoch,
    randomState: random.currentState,
    elapsedSeconds: elapsed(),
    history,
    options: { ...options },
  });

  const result = await runTrainLoop({
    label: 'denoise',
    model,
    optimizer,
    epochs: options.epochs,
    stepsPerEpoch: options.stepsPerEpoch,
    startEpoch,
    learningRate: cosineSchedule(options.learningRate),
    signal: context.signal,
    log,
    makeBatch: () => {
      const clean = samplePatchesFor(trainPhotos, options, random);
      const noisy = clean.slice();
      addBlindNoise(noisy, patchValues, options.minSigma, options.maxSigma, random);
      const shape: [number, number, number, number] = [options.batchSize, options.patchSize, options.patchSize, 3];
      return { inputs: tf.tensor4d(noisy, shape), targets: tf.tensor4d(clean, shape) };
    },
    loss: (predictions, targets) => tf.losses.meanSquaredError(targets, predictions) as tf.Scalar,
    validate: async () => validateDenoiser(model, validationCrops),
    onEpochEnd: async (epoch, metrics, seconds) => {
      history.push({ epoch: epoch + 1, seconds, ...metrics });
      log.info(`epoch ${epoch + 1}/${options.epochs}: ${formatMetrics(metrics)} (${seconds.toFixed(0)} s)`);
      await saveCheckpoint(options.out, model, optimizer, metadataFor(epoch + 1, metrics), stateFor(epoch + 1));
    },
    onInterrupt: async (epoch) => {
      // The partial epoch's steps are kept in the weights, but the checkpoint counts the epoch
      // as not done, so a resume repeats it with fresh random patches.
      await saveCheckpoint(options.out, model, optimizer, metadataFor(epoch, history.at(-1) ?? {}), stateFor(epoch));
    },
  });

  if (result.interrupted) {
    log.info(`Checkpoint saved in ${path.join(options.out, 'checkpoint')}; continue with the same command and --resume`);
    return { interrupted: true, metrics: result.lastMetrics };
  }

  await saveModel(model, options.out, metadataFor(options.epochs, result.lastMetrics));
  log.info(`Saved the model to ${options.out} after ${(elapsed() / 60).toFixed(1)} min (${result.secondsPerStep.toFixed(2)} s per step)`);
  return { interrupted: false, metrics: result.lastMetrics };
}

async function hasTrainingOutput(out: string): Promise<boolean> {
  for (const file of [path.join(out, 'model.json'), path.join(out, 'checkpoint', 'state.json')]) {
    if (await access(file).then(() => true, () => false)) return true;
  }
  return false;
}

function samplePatchesFor(photos: readonly TrainingPhoto[], options: DenoiseTrainOptions, random: SeededRandom): Float32Array {
  return samplePatches(photos, options.batchSize, options.patchSize, random);
}

/** Validation PSNR at fixed noise levels and seeds, so that epochs compare. */
async function validateDenoiser(model: tfl.LayersModel, crops: readonly { width: number; height: number; rgb: Uint8Array }[]): Promise<Record<string, number>> {
  if (crops.length === 0) return {};
  const metrics: Record<string, number> = {};

  for (const sigma of VALIDATION_SIGMAS) {
    let noisySum = 0;
    let denoisedSum = 0;
    for (const [index, crop] of crops.entries()) {
      const noisy = addGaussianNoise(crop.rgb, sigma, 1000 + index);
      const input = tf.tidy(() => tf.div(tf.tensor4d(noisy, [1, crop.height, crop.width, 3], 'float32'), 255) as tf.Tensor4D);
      const output = denoiseBatch(model, input);
      const rounded = tf.tidy(() => tf.round(tf.mul(output, 255)));
      const denoised = new Uint8Array(await rounded.data());
      tf.dispose([input, output, rounded]);
      noisySum += psnr(crop.rgb, noisy);
      denoisedSum += psnr(crop.rgb, denoised);
    }
    metrics[`noisy${sigma}`] = noisySum / crops.length;
    metrics[`psnr${sigma}`] = denoisedSum / crops.length;
  }
  return metrics;
}

function formatMetrics(metrics: Record<string, number>): string {
  return Object.entries(metrics)
    .map(([key, value]) => `${key} ${key === 'loss' ? value.toExponential(3) : value.toFixed(2)}`)
    .join(', ');
}

import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

import { invalidOption } from '../errors.js';
import { psnr } from '../eval/metrics.js';
import { buildDenoiser, type DenoiseArchitecture, DENOISE_SIZE_MULTIPLE, denoiseBatch, validateArchitecture } from '../models/denoise.js';
import { addBlindNoise, addGaussianNoise } from './noise.js';
import type { TrainingPhoto } from './photos.js';
import { centreCrop, samplePatches } from './patches.js';
import type { SeededRandom } from './random.js';
import { type RawOptions, readInteger, readNumber, resolveCommonTrainOptions } from './options.js';
import { type PhotoTrainOptions, type TrainContext, type TrainingTask, type TrainResult, trainTask } from './trainer.js';
import { meanSquaredError } from './loop.js';

export interface DenoiseTrainOptions extends PhotoTrainOptions {
  readonly minSigma: number;
  readonly maxSigma: number;
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

export const DENOISE_TRAINING: TrainingTask<DenoiseTrainOptions> = {
  command: 'denoise',
  description: 'blind denoiser, Gaussian noise of sigma --min-sigma to --max-sigma',
  flags: ['minSigma', 'maxSigma', 'patchSize', 'maxSide', 'validationCrop'],
  resolveOptions: resolveDenoiseTrainOptions,
  modelTask: () => 'denoise',
  modelVersion: DENOISE_MODEL_VERSION,
  buildModel: (options) => buildDenoiser(options.architecture, options.seed),
  loss: () => meanSquaredError,
  describe: (options) => `patches ${options.patchSize}x${options.patchSize}, batch ${options.batchSize}, noise sigma ${options.minSigma}-${options.maxSigma}`,
  metadata: (options) => ({
    sizeMultiple: DENOISE_SIZE_MULTIPLE,
    inputChannels: 3,
    architecture: { name: 'residual-unet-autoencoder', ...options.architecture },
    training: { noiseSigmaRange: [options.minSigma, options.maxSigma] },
  }),
  prepare: async (options, photos, random) => {
    const patchValues = options.patchSize * options.patchSize * 3;
    const validationCrops = photos.validation.map((photo) => centreCrop(photo, options.validationCrop, DENOISE_SIZE_MULTIPLE));
    return {
      makeBatch: () => {
        const clean = samplePatchesFor(photos.train, options, random);
        const noisy = clean.slice();
        addBlindNoise(noisy, patchValues, options.minSigma, options.maxSigma, random);
        const shape: [number, number, number, number] = [options.batchSize, options.patchSize, options.patchSize, 3];
        return { inputs: tf.tensor4d(noisy, shape), targets: tf.tensor4d(clean, shape) };
      },
      validate: (model) => validateDenoiser(model, validationCrops),
    };
  },
};

/**
 * Trains the blind denoiser on random patches of the photos in `options.data`, with Gaussian
 * noise synthesised per batch, validation PSNR each epoch on held-out photos, a checkpoint each
 * epoch, and the final model saved to `options.out`.
 */
export function trainDenoise(options: Readonly<DenoiseTrainOptions>, context: TrainContext): Promise<TrainResult> {
  return trainTask(DENOISE_TRAINING, options, context);
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

import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

import { colourfulness, psnr } from '../eval/metrics.js';
import { greyWithSameLightness, lightnessOf, rgbToLab } from '../media/lab.js';
import { binCrossEntropy, binTargets, chromaBins } from '../models/chroma-bins.js';
import {
  buildColorizer,
  CHROMA_SCALE,
  type ChromaSettings,
  chromaFromOutput,
  type ColorizeArchitecture,
  COLORIZE_SIZE_MULTIPLE,
  joinLightnessAndChroma,
  type PredictedChroma,
  runColorizer,
  validateColorizeArchitecture,
} from '../models/colorize.js';
import { invalidOption } from '../errors.js';
import { type RawOptions, readInteger, resolveCommonTrainOptions } from './options.js';
import { centreCrop, samplePatches } from './patches.js';
import { splitByName, type TrainingPhoto } from './photos.js';
import type { PhotoTrainOptions, TrainingTask } from './trainer.js';
import { mean } from '../eval/table.js';

export interface ColorizeTrainOptions extends PhotoTrainOptions {
  /** Long side of the working images; photos are scaled to it, as inference scales them. */
  readonly workingSize: number;
  readonly loss: ColorizeLoss;
  /** Layer widths; the CLI always uses the defaults, tests pass smaller ones. */
  readonly architecture: ColorizeArchitecture;
}

export const COLORIZE_MODEL_VERSION = '1.2.0';

/**
 * "l2" is the mean squared error on a and b, which predicts the conditional mean colour, so a
 * calibrated chroma factor can scale it up. "rebalanced-huber" weights rare saturated colours up,
 * which gives more colour at once but, on held-out photos, a PSNR below the grey photo's.
 * "bins" is the cross-entropy over quantised chroma (chroma-bins.ts), read out with a
 * calibrated annealed mean.
 */
export type ColorizeLoss = 'l2' | 'rebalanced-huber' | 'bins';
const COLORIZE_LOSSES: readonly ColorizeLoss[] = ['l2', 'rebalanced-huber', 'bins'];

/** Width of the chroma-magnitude bins that class rebalancing counts, in Lab units. */
const CHROMA_BIN_WIDTH = 10;
const CHROMA_BINS = 16;
/**
 * Mix of the empirical chroma distribution with a uniform one before inverting it into loss
 * weights, as in Zhang, Isola and Efros (2016), "Colorful Image Colorization", which uses 0.5.
 */
const REBALANCE_MIX = 0.5;
/** Huber loss threshold, in CHROMA_SCALE units (about 11 Lab units). */
const HUBER_DELTA = 0.1;
/**
 * Chroma factors tried on the calibration photos after each epoch. Factors below 1 damp an
 * early model whose colours are still wrong, and 0 gives the grey photo, which always qualifies.
 * Steps of 0.05 from 1 to 2, because PSNR falls steeply past the best factor: a step from 1.3 to
 * 1.5 cost one model 0.4 dB.
 */
const CHROMA_BOOSTS = [0, 0.25, 0.5, 0.75, ...Array.from({ length: 21 }, (_, index) => Math.round((1 + index * 0.05) * 100) / 100), 2.5, 3];
/** Annealed-mean temperatures tried for a bins model; Zhang et al. chose 0.38 by eye. */
const TEMPERATURES = [1, 0.7, 0.5, 0.38, 0.25];

/** Share of the training photos kept out of the batches to calibrate the chroma factor on. */
const CALIBRATION_FRACTION = 0.12;
const MIN_PHOTOS_TO_CALIBRATE = 8;

export function resolveColorizeTrainOptions(raw: RawOptions): Readonly<ColorizeTrainOptions> {
  const common = resolveCommonTrainOptions(raw, { epochs: 30, stepsPerEpoch: 50, batchSize: 8, learningRate: 1e-3 });
  const workingSize = readInteger(raw, 'workingSize', 256, 32, 2048);
  const patchSize = readInteger(raw, 'patchSize', 128, 16, 2048);
  if (patchSize % COLORIZE_SIZE_MULTIPLE !== 0) throw invalidOption(`a multiple of ${COLORIZE_SIZE_MULTIPLE}`, '--patch-size', patchSize);
  if (patchSize > workingSize) throw invalidOption(`an integer no greater than --working-size (${workingSize})`, '--patch-size', patchSize);

  const loss = raw.loss ?? 'l2';
  if (!(COLORIZE_LOSSES as readonly unknown[]).includes(loss)) throw invalidOption(`one of ${COLORIZE_LOSSES.join(', ')}`, '--loss', loss);

  return Object.freeze({
    ...common,
    workingSize,
    patchSize,
    loss: loss as ColorizeLoss,
    maxSide: workingSize,
    architecture: validateColorizeArchitecture((raw.architecture ?? {}) as Partial<ColorizeArchitecture>),
  });
}

/**
 * Loss weights per chroma-magnitude bin, from the training photos: rare saturated colours
 * weigh more, which counters the regression to a brownish mean that an unweighted loss gives.
 * The weights average 1 over the training pixels.
 */
export function chromaBinWeights(photos: readonly TrainingPhoto[]): Float32Array {
  const counts = new Float64Array(CHROMA_BINS);
  for (const photo of photos) {
    for (let i = 0; i < photo.rgb.length; i += 3 * 7) {
      const [, a, b] = rgbToLab(photo.rgb[i], photo.rgb[i + 1], photo.rgb[i + 2]);
      counts[chromaBin(a, b)]++;
    }
  }
  const total = counts.reduce((sum, count) => sum + count, 0) || 1;
  const weights = new Float32Array(CHROMA_BINS);
  let expected = 0;
  for (let bin = 0; bin < CHROMA_BINS; bin++) {
    const probability = counts[bin] / total;
    weights[bin] = 1 / ((1 - REBALANCE_MIX) * probability + REBALANCE_MIX / CHROMA_BINS);
    expected += probability * weights[bin];
  }
  for (let bin = 0; bin < CHROMA_BINS; bin++) weights[bin] /= expected;
  return weights;
}

function chromaBin(a: number, b: number): number {
  return Math.min(CHROMA_BINS - 1, Math.floor(Math.hypot(a, b) / CHROMA_BIN_WIDTH));
}

/**
 * Splits float RGB patches in [0, 1] into the network input (L / 100) and the target, three
 * channels per pixel: a / CHROMA_SCALE, b / CHROMA_SCALE and the pixel's loss weight.
 */
function toLabBatch(patches: Float32Array, weights: Float32Array): { lightness: Float32Array; targets: Float32Array } {
  const pixels = patches.length / 3;
  const lightness = new Float32Array(pixels);
  const targets = new Float32Array(pixels * 3);
  for (let i = 0; i < pixels; i++) {
    const [l, a, b] = rgbToLab(Math.round(patches[i * 3] * 255), Math.round(patches[i * 3 + 1] * 255), Math.round(patches[i * 3 + 2] * 255));
    lightness[i] = l / 100;
    targets[i * 3] = a / CHROMA_SCALE;
    targets[i * 3 + 1] = b / CHROMA_SCALE;
    targets[i * 3 + 2] = weights[chromaBin(a, b)];
  }
  return { lightness, targets };
}

/** Network input, L / 100, of float RGB patches in [0, 1]; the bins targets come from binTargets. */
function lightnessBatch(patches: Float32Array): Float32Array {
  const lightness = new Float32Array(patches.length / 3);
  for (let i = 0; i < lightness.length; i++) {
    lightness[i] = rgbToLab(Math.round(patches[i * 3] * 255), Math.round(patches[i * 3 + 1] * 255), Math.round(patches[i * 3 + 2] * 255))[0] / 100;
  }
  return lightness;
}

/** Class-rebalanced Huber loss on chroma; `targets` carries the weight as a third channel. */
function rebalancedHuber(predictions: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const [chroma, weight] = tf.split(targets, [2, 1], 3);
    const difference = tf.abs(tf.sub(predictions, chroma));
    const quadratic = tf.minimum(difference, HUBER_DELTA);
    const linear = tf.sub(difference, quadratic);
    const huber = tf.add(tf.div(tf.mul(quadratic, quadratic), 2 * HUBER_DELTA), linear);
    return tf.mean(tf.mul(huber, weight)) as tf.Scalar;
  });
}

const LOSS_DESCRIPTIONS: Record<ColorizeLoss, string> = {
  l2: 'mean squared error on a and b',
  'rebalanced-huber': 'class-rebalanced Huber loss on a and b',
  bins: 'cross-entropy over quantised (a, b), read out with an annealed mean',
};

/** Mean squared error on chroma; the weight channel of `targets` is ignored. */
function chromaL2(predictions: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const [chroma] = tf.split(targets, [2, 1], 3);
    return tf.mean(tf.squaredDifference(predictions, chroma)) as tf.Scalar;
  });
}

const LOSSES: Record<ColorizeLoss, (predictions: tf.Tensor, targets: tf.Tensor) => tf.Scalar> = {
  l2: chromaL2,
  'rebalanced-huber': rebalancedHuber,
  bins: binCrossEntropy,
};

interface ValidationImage {
  readonly width: number;
  readonly height: number;
  readonly rgb: Uint8Array;
  readonly grey: Uint8Array;
  readonly lightness: Float32Array;
}

interface ChromaScore {
  readonly greyPsnr: number;
  readonly psnr: number;
  readonly colourfulness: number;
  readonly originalColourfulness: number;
}

/** Mean PSNR and colourfulness of images colorized with `chromas` scaled by `boost`. */
function scoreChroma(images: readonly ValidationImage[], chromas: readonly PredictedChroma[], boost: number): ChromaScore {
  const results = images.map((image, index) => {
    const chroma = chromas[index];
    const boosted = chroma.values.map((value) => value * boost);
    return joinLightnessAndChroma(image.lightness, image.width, image.height, boosted, chroma.width, chroma.height);
  });
  return {
    greyPsnr: mean(images.map((image) => psnr(image.rgb, image.grey))),
    psnr: mean(results.map((result, index) => psnr(images[index].rgb, result))),
    colourfulness: mean(results.map((result) => colourfulness(result))),
    originalColourfulness: mean(images.map((image) => colourfulness(image.rgb))),
  };
}

/** Unboosted chroma of every image at each temperature; the network runs once per image. */
async function predictAll(model: tfl.LayersModel, images: readonly ValidationImage[], temperatures: readonly number[]): Promise<PredictedChroma[][]> {
  const byTemperature: PredictedChroma[][] = temperatures.map(() => []);
  for (const image of images) {
    const output = runColorizer(model, image.lightness, image.width, image.height);
    try {
      for (const [index, temperature] of temperatures.entries()) byTemperature[index].push(await chromaFromOutput(output, { chromaBoost: 1, temperature }));
    } finally {
      output.dispose();
    }
  }
  return byTemperature;
}

/**
 * Picks the most colourful chroma factor, and for a bins model the temperature, whose mean
 * PSNR on the calibration photos is still at least the grey baseline's. Colour predicted with
 * too little confidence comes out pale, so a factor above 1 or a lower temperature can restore
 * saturation without costing accuracy. A factor below 1 is chosen while the predicted colours
 * are worse than none. Calibration photos are training photos kept out of the
 * batches, so the validation photos stay a fair test of the choice.
 */
async function calibrateChroma(model: tfl.LayersModel, images: readonly ValidationImage[], temperatures: readonly number[]): Promise<ChromaSettings> {
  if (images.length === 0) return { chromaBoost: 1, temperature: 1 };

  const chromas = await predictAll(model, images, temperatures);
  let best = { chromaBoost: 0, temperature: 1, colourfulness: 0 };
  for (const [index, temperature] of temperatures.entries()) {
    for (const boost of CHROMA_BOOSTS) {
      const score = scoreChroma(images, chromas[index], boost);
      if (score.psnr >= score.greyPsnr && score.colourfulness > best.colourfulness) best = { chromaBoost: boost, temperature, colourfulness: score.colourfulness };
    }
  }
  return { chromaBoost: best.chromaBoost, temperature: best.temperature };
}

/** Validation metrics at the calibrated settings, and of the plain mean without a factor. */
async function validateColorizer(model: tfl.LayersModel, images: readonly ValidationImage[], settings: ChromaSettings): Promise<Record<string, number>> {
  if (images.length === 0) return { ...settings };

  const temperatures = settings.temperature === 1 ? [1] : [settings.temperature, 1];
  const chromas = await predictAll(model, images, temperatures);
  const score = scoreChroma(images, chromas[0], settings.chromaBoost);
  const unboosted = scoreChroma(images, chromas[temperatures.length - 1], 1);
  return {
    ...score,
    colourfulnessRatio: score.colourfulness / score.originalColourfulness,
    ...settings,
    unboostedPsnr: unboosted.psnr,
    unboostedColourfulness: unboosted.colourfulness,
  };
}

/** Photos for validation and calibration: a centre crop at the working size, with its grey version. */
function toValidationImage(photo: TrainingPhoto, workingSize: number): ValidationImage {
  const crop = centreCrop(photo, workingSize, COLORIZE_SIZE_MULTIPLE);
  return { ...crop, grey: greyWithSameLightness(crop.rgb), lightness: lightnessOf(crop.rgb) };
}

/**
 * Keeps a few training photos out of the batches for calibration, chosen by a hash of their
 * names like the validation split. Below MIN_PHOTOS_TO_CALIBRATE training photos none are kept
 * and the factor stays 1, because training needs them more.
 */
export function splitCalibration(photos: readonly TrainingPhoto[]): { train: TrainingPhoto[]; calibration: TrainingPhoto[] } {
  if (photos.length < MIN_PHOTOS_TO_CALIBRATE) return { train: [...photos], calibration: [] };

  const names = splitByName(photos.map((photo) => photo.name), CALIBRATION_FRACTION);
  return {
    train: photos.filter((photo) => names.train.includes(photo.name)),
    calibration: photos.filter((photo) => names.validation.includes(photo.name)),
  };
}


export const COLORIZE_TRAINING: TrainingTask<ColorizeTrainOptions> = {
  command: 'colorize',
  description: 'colorization: chroma (a, b) of CIE Lab from lightness L, at a working size',
  flags: ['workingSize', 'patchSize', 'loss'],
  resolveOptions: resolveColorizeTrainOptions,
  modelTask: () => 'colorize',
  modelVersion: COLORIZE_MODEL_VERSION,
  buildModel: (options) => buildColorizer(options.architecture, options.seed, options.loss === 'bins' ? 'bins' : 'regression'),
  loss: (options) => LOSSES[options.loss],
  describe: (options) =>
    `working size ${options.workingSize} px, patches ${options.patchSize}x${options.patchSize}, batch ${options.batchSize}, ${LOSS_DESCRIPTIONS[options.loss]}`,
  metadata: (options) => ({
    sizeMultiple: COLORIZE_SIZE_MULTIPLE,
    inputChannels: 1,
    architecture: { name: 'lab-chroma-unet-autoencoder', ...options.architecture },
    training: { workingSize: options.workingSize, loss: options.loss },
  }),
  prepare: async (options, photos, random, log) => {
    const { batchSize, patchSize } = options;
    const split = splitCalibration(photos.train);
    if (split.calibration.length > 0) {
      log.info(`Calibrating the chroma factor on ${split.calibration.length} training photos kept out of the batches (${split.calibration.map((p) => p.name).join(', ')})`);
    }
    const weights = chromaBinWeights(split.train);
    log.debug(`chroma bin weights: ${Array.from(weights, (weight) => weight.toFixed(2)).join(' ')}`);
    const validation = photos.validation.map((photo) => toValidationImage(photo, options.workingSize));
    // Too few photos to spare some: the factor is tuned on the validation photos, which then
    // stop being a fair test of it, and the log reports this.
    const calibration = split.calibration.length > 0 ? split.calibration.map((photo) => toValidationImage(photo, options.workingSize)) : validation;
    if (split.calibration.length === 0 && validation.length > 0) {
      log.info(`Fewer than ${MIN_PHOTOS_TO_CALIBRATE} training photos: the chroma factor is calibrated on the validation photos`);
    }
    const bins = options.loss === 'bins' ? chromaBins() : undefined;
    let settings: ChromaSettings = { chromaBoost: 1, temperature: 1 };

    return {
      makeBatch: () => {
        const patches = samplePatches(split.train, batchSize, patchSize, random);
        if (bins) {
          return {
            inputs: tf.tensor4d(lightnessBatch(patches), [batchSize, patchSize, patchSize, 1]),
            targets: tf.tensor4d(binTargets(patches, batchSize, patchSize, patchSize, bins), [batchSize, patchSize / 2, patchSize / 2, bins.count]),
          };
        }

        const { lightness, targets } = toLabBatch(patches, weights);
        return { inputs: tf.tensor4d(lightness, [batchSize, patchSize, patchSize, 1]), targets: tf.tensor4d(targets, [batchSize, patchSize, patchSize, 3]) };
      },
      validate: async (model) => {
        settings = await calibrateChroma(model, calibration, bins ? TEMPERATURES : [1]);
        if (settings.chromaBoost === 0 && calibration.length > 0) {
          log.warn('No chroma factor kept the calibration photos at or above the PSNR of grey, so the factor is 0 and the model returns grey photos; train longer or on more photos');
        }
        return validateColorizer(model, validation, settings);
      },
      inference: () => (bins ? { ...settings } : { chromaBoost: settings.chromaBoost }),
      // Validation photos that calibrated the factor are listed too, so that eval does not count them as unseen.
      calibration: (split.calibration.length > 0 ? split.calibration : photos.validation).map((photo) => photo.name),
    };
  },
};

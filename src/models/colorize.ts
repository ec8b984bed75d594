import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import sharp from 'sharp';

import { DarkroomError } from '../errors.js';
import { lightnessOf, writeLabAsRgb } from '../media/lab.js';
import { conv, resolveLayerWidths, seededInitializers, upsample } from './blocks.js';
import { annealedMean, chromaBins } from './chroma-bins.js';
import { BroadcastAddLayer } from './layers.js';

/**
 * Architecture of the colorization autoencoder: a U-shaped network from lightness L to the two
 * chroma channels a and b of CIE Lab. Three stride-2 stages give the bottleneck a receptive
 * field of a large part of a 256-pixel working image, which colour needs, because sky, skin and grass
 * differ in context more than in local texture. Skip connections carry the edges back,
 * so chroma lines up with the objects.
 */
export interface ColorizeArchitecture {
  readonly baseFilters: number;
  readonly middleFilters: number;
  readonly deepFilters: number;
  readonly bottleneckFilters: number;
  readonly bottleneckDepth: number;
}

export const DEFAULT_COLORIZE_ARCHITECTURE: ColorizeArchitecture = Object.freeze({
  baseFilters: 24,
  middleFilters: 48,
  deepFilters: 96,
  bottleneckFilters: 128,
  bottleneckDepth: 3,
});

/** Working height and width must be multiples of this, because of the three stride-2 stages. */
export const COLORIZE_SIZE_MULTIPLE = 8;

/** Spread of the bins head's initial distribution, in Lab units. */
const GREY_PRIOR_SIGMA = 25;

/** Chroma values are divided by this for the network, so that its targets lie in about [-1, 1]. */
export const CHROMA_SCALE = 110;

export function validateColorizeArchitecture(raw: Partial<ColorizeArchitecture>): ColorizeArchitecture {
  return resolveLayerWidths(DEFAULT_COLORIZE_ARCHITECTURE, raw);
}

/**
 * "regression" predicts (a, b) / CHROMA_SCALE at the input's size. "bins" predicts logits over
 * the chroma bins of chroma-bins.ts at half the input's size, as Zhang et al. predict at a
 * quarter: chroma varies slowly, and 313 channels at full size would cost more than the
 * whole rest of the network.
 */
export type ColorizeHead = 'regression' | 'bins';

/**
 * Builds the colorizer. Input: L / 100, one channel, at a size that is a multiple of 8. With
 * a seed the initial weights are the same on every run.
 */
export function buildColorizer(architecture: ColorizeArchitecture = DEFAULT_COLORIZE_ARCHITECTURE, seed?: number, head: ColorizeHead = 'regression'): tfl.LayersModel {
  const { baseFilters, middleFilters, deepFilters, bottleneckFilters, bottleneckDepth } = architecture;
  const init = seededInitializers(seed);
  const input = tfl.input({ shape: [null, null, 1], name: 'lightness' });
  const apply = (layer: tfl.layers.Layer, x: tfl.SymbolicTensor | tfl.SymbolicTensor[]): tfl.SymbolicTensor => layer.apply(x) as tfl.SymbolicTensor;

  const full = apply(conv(baseFilters, 'enc_full_2', init), apply(conv(baseFilters, 'enc_full_1', init), input));
  const half = apply(conv(middleFilters, 'enc_half_1', init), apply(conv(middleFilters, 'enc_half_down', init, 2), full));
  const quarter = apply(conv(deepFilters, 'enc_quarter_1', init), apply(conv(deepFilters, 'enc_quarter_down', init, 2), half));
  let eighth = apply(conv(bottleneckFilters, 'enc_eighth_down', init, 2), quarter);
  for (let i = 1; i <= bottleneckDepth; i++) eighth = apply(conv(bottleneckFilters, `bottleneck_${i}`, init), eighth);

  // The mean of the bottleneck features over the whole image, through two dense layers, is
  // added at every position: a sunset or a forest tints every region of the photo.
  const pooled = apply(tfl.layers.globalAveragePooling2d({ name: 'global_pool' }), eighth);
  const globalHidden = apply(tfl.layers.dense({ units: bottleneckFilters, activation: 'relu', kernelInitializer: init(), name: 'global_dense_1' }), pooled);
  const globalContext = apply(tfl.layers.dense({ units: bottleneckFilters, kernelInitializer: init(), name: 'global_dense_2' }), globalHidden);
  eighth = apply(conv(bottleneckFilters, 'global_fusion', init), apply(new BroadcastAddLayer({ name: 'global_add' }), [eighth, globalContext]));

  const decQuarter = apply(conv(deepFilters, 'dec_quarter_1', init), apply(tfl.layers.add({ name: 'skip_quarter' }), [apply(upsample(deepFilters, 'dec_quarter_up', init), eighth), quarter]));
  const decHalf = apply(conv(middleFilters, 'dec_half_1', init), apply(tfl.layers.add({ name: 'skip_half' }), [apply(upsample(middleFilters, 'dec_half_up', init), decQuarter), half]));
  if (head === 'bins') {
    const logitsLayer = tfl.layers.conv2d({ filters: chromaBins().count, kernelSize: 1, kernelInitializer: 'zeros', name: 'chroma_logits' });
    const model = tfl.model({ inputs: input, outputs: apply(logitsLayer, decHalf), name: 'colorize_bins_autoencoder' });
    logitsLayer.setWeights([logitsLayer.getWeights()[0], tf.tensor1d(greyPriorLogits())]);
    return model;
  }
  const decFull = apply(conv(baseFilters, 'dec_full_1', init), apply(tfl.layers.add({ name: 'skip_full' }), [apply(upsample(baseFilters, 'dec_full_up', init), decHalf), full]));

  // Zero initialisation makes the untrained model return grey (a = b = 0).
  const chroma = apply(tfl.layers.conv2d({ filters: 2, kernelSize: 3, padding: 'same', kernelInitializer: 'zeros', name: 'chroma' }), decFull);
  return tfl.model({ inputs: input, outputs: chroma, name: 'colorize_autoencoder' });
}

/**
 * Initial logits of the bins head: a narrow Gaussian around a = b = 0, so the untrained model
 * returns near-grey photos, as the regression head does. A uniform start would tint every
 * photo red, the mean of the sRGB gamut in (a, b).
 */
function greyPriorLogits(): Float32Array {
  const { count, centres } = chromaBins();
  const logits = new Float32Array(count);
  for (let bin = 0; bin < count; bin++) logits[bin] = -(centres[bin * 2] ** 2 + centres[bin * 2 + 1] ** 2) / (2 * GREY_PRIOR_SIGMA ** 2);
  return logits;
}

/**
 * Working size for a photo: scaled so that its long side is about `workingSize`, never
 * enlarged beyond rounding, and each side a multiple of `multiple` and at least `multiple`.
 */
export function workingDimensions(width: number, height: number, workingSize: number, multiple: number): { width: number; height: number } {
  const factor = Math.min(1, workingSize / Math.max(width, height));
  const round = (side: number): number => Math.max(multiple, Math.round((side * factor) / multiple) * multiple);
  return { width: round(width), height: round(height) };
}

/** Settings that inference reads, calibrated during training and stored in darkroom.json. */
export interface ChromaSettings {
  /** Factor applied to the predicted chroma (0 to 3). */
  readonly chromaBoost: number;
  /** Temperature of the annealed mean, for a model with the bins head; 1 is the plain mean. */
  readonly temperature: number;
}

export interface ColorizeOptions extends ChromaSettings {
  readonly workingSize: number;
  readonly sizeMultiple: number;
}

/** Chroma (a, b) in Lab units, HWC with 2 channels; a bins model gives it at half the working size. */
export interface PredictedChroma {
  readonly values: Float32Array;
  readonly width: number;
  readonly height: number;
}

/** Runs the network on lightness (0-100) at the working size; the caller disposes the output. */
export function runColorizer(model: tfl.LayersModel, lightness: Float32Array, width: number, height: number): tf.Tensor4D {
  return tf.tidy(() => model.predict(tf.div(tf.tensor4d(lightness, [1, height, width, 1]), 100)) as tf.Tensor4D);
}

/** Turns the network's output, regression or bin logits, into chroma. */
export async function chromaFromOutput(output: tf.Tensor4D, settings: ChromaSettings): Promise<PredictedChroma> {
  const [, height, width, channels] = output.shape;
  if (channels !== 2 && channels !== chromaBins().count) {
    throw new DarkroomError('MODEL_NOT_FOUND', `The colorizer predicts ${channels} channels, neither 2 (a, b) nor the ${chromaBins().count} chroma bins of this version of darkroom`);
  }

  const chroma = tf.tidy(() => {
    const ab = channels === 2 ? tf.mul(output, CHROMA_SCALE) : annealedMean(output, settings.temperature);
    return tf.mul(ab, settings.chromaBoost);
  });
  const values = (await chroma.data()) as Float32Array;
  chroma.dispose();
  return { values, width, height };
}

/** Predicts chroma for lightness (0-100) at the working size. */
export async function predictChroma(model: tfl.LayersModel, lightness: Float32Array, width: number, height: number, settings: ChromaSettings): Promise<PredictedChroma> {
  const output = runColorizer(model, lightness, width, height);
  try {
    return await chromaFromOutput(output, settings);
  } finally {
    output.dispose();
  }
}

/**
 * Joins full-resolution lightness with chroma predicted at a lower resolution: chroma is
 * upsampled bilinearly with half-pixel centres, pixel by pixel, so no full-size float buffer
 * is allocated. Every output pixel keeps its input lightness, up to 8-bit rounding.
 */
export function joinLightnessAndChroma(
  lightness: Float32Array,
  width: number,
  height: number,
  chroma: Float32Array,
  chromaWidth: number,
  chromaHeight: number,
): Uint8Array {
  const rgb = new Uint8Array(width * height * 3);
  const scaleX = chromaWidth / width;
  const scaleY = chromaHeight / height;

  for (let y = 0; y < height; y++) {
    const sourceY = Math.min(chromaHeight - 1, Math.max(0, (y + 0.5) * scaleY - 0.5));
    const y0 = Math.floor(sourceY);
    const y1 = Math.min(chromaHeight - 1, y0 + 1);
    const fy = sourceY - y0;
    for (let x = 0; x < width; x++) {
      const sourceX = Math.min(chromaWidth - 1, Math.max(0, (x + 0.5) * scaleX - 0.5));
      const x0 = Math.floor(sourceX);
      const x1 = Math.min(chromaWidth - 1, x0 + 1);
      const fx = sourceX - x0;
      const w00 = (1 - fx) * (1 - fy);
      const w01 = fx * (1 - fy);
      const w10 = (1 - fx) * fy;
      const w11 = fx * fy;
      const i00 = (y0 * chromaWidth + x0) * 2;
      const i01 = (y0 * chromaWidth + x1) * 2;
      const i10 = (y1 * chromaWidth + x0) * 2;
      const i11 = (y1 * chromaWidth + x1) * 2;
      const a = w00 * chroma[i00] + w01 * chroma[i01] + w10 * chroma[i10] + w11 * chroma[i11];
      const b = w00 * chroma[i00 + 1] + w01 * chroma[i01 + 1] + w10 * chroma[i10 + 1] + w11 * chroma[i11 + 1];
      const pixel = y * width + x;
      writeLabAsRgb(lightness[pixel], a, b, rgb, pixel * 3);
    }
  }
  return rgb;
}

/** Scales lightness (0-100) to a working size with sharp's Lanczos filter, which does not alias when it shrinks. */
export async function resizeLightness(lightness: Float32Array, width: number, height: number, toWidth: number, toHeight: number): Promise<Float32Array> {
  if (width === toWidth && height === toHeight) return lightness;

  // 16-bit grey keeps the quantisation far below what the model can tell apart.
  const codes = new Uint16Array(lightness.length);
  for (let i = 0; i < lightness.length; i++) codes[i] = Math.round(Math.min(100, Math.max(0, lightness[i])) * 655.35);
  const resized = await sharp(codes, { raw: { width, height, channels: 1 }, limitInputPixels: false })
    .resize(toWidth, toHeight, { fit: 'fill' })
    .toColourspace('grey16')
    .raw({ depth: 'ushort' })
    .toBuffer();
  const values = new Uint16Array(resized.buffer, resized.byteOffset, resized.byteLength / 2);
  return Float32Array.from(values, (code) => code / 655.35);
}

/**
 * Colorizes an sRGB image: its lightness is kept at full resolution, and the model predicts
 * chroma at the working size. A colour input is treated as its lightness only.
 */
export async function colorizeImage(model: tfl.LayersModel, image: { width: number; height: number; rgb: Uint8Array }, options: ColorizeOptions): Promise<Uint8Array> {
  const { width, height } = image;
  const lightness = lightnessOf(image.rgb);
  const working = workingDimensions(width, height, options.workingSize, options.sizeMultiple);
  const workingLightness = await resizeLightness(lightness, width, height, working.width, working.height);
  const chroma = await predictChroma(model, workingLightness, working.width, working.height, options);
  return joinLightnessAndChroma(lightness, width, height, chroma.values, chroma.width, chroma.height);
}

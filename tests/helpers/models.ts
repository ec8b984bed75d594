import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

import { buildColorizer, type ColorizeArchitecture, COLORIZE_SIZE_MULTIPLE } from '../../src/models/colorize.js';
import { buildDenoiser, DENOISE_SIZE_MULTIPLE, type DenoiseArchitecture } from '../../src/models/denoise.js';
import { buildUpscaler, type UpscaleArchitecture, type UpscaleScale, upscaleTask } from '../../src/models/upscale.js';
import type { ModelMetadata } from '../../src/models/metadata.js';
import { saveModel } from '../../src/models/storage.js';

export const TINY_ARCHITECTURE: DenoiseArchitecture = Object.freeze({ baseFilters: 4, middleFilters: 6, bottleneckFilters: 8, bottleneckDepth: 1 });

/**
 * Gives every weight a small random value, so that the residual head is not the zero-initialised
 * identity and tests see a real, non-trivial convolutional network.
 */
export function randomizeWeights(model: tfl.LayersModel, seed = 7, deviation = 0.1): void {
  const values = model.getWeights().map((weight, index) => tf.randomNormal(weight.shape, 0, deviation, 'float32', seed + index));
  model.setWeights(values);
  tf.dispose(values);
}

export function denoiseMetadata(overrides: Partial<ModelMetadata> = {}): ModelMetadata {
  return {
    format: 'darkroom-model',
    formatVersion: 1,
    task: 'denoise',
    version: '0.0.1-test',
    createdAt: new Date(0).toISOString(),
    sizeMultiple: DENOISE_SIZE_MULTIPLE,
    inputChannels: 3,
    architecture: { ...TINY_ARCHITECTURE },
    training: {
      dataDir: '/nonexistent',
      files: { train: ['seen.png'], validation: [] },
      patchSize: 32,
      batchSize: 2,
      steps: 0,
      epochs: 0,
      seconds: 0,
      backend: 'cpu',
    },
    validation: {},
    ...overrides,
  };
}

/** Saves a tiny denoiser with random weights to `dir` and returns the model. */
export async function saveTinyDenoiser(dir: string, seed = 7): Promise<tfl.LayersModel> {
  const model = buildDenoiser(TINY_ARCHITECTURE);
  randomizeWeights(model, seed);
  await saveModel(model, dir, denoiseMetadata());
  return model;
}

export const TINY_UPSCALE_ARCHITECTURE: UpscaleArchitecture = Object.freeze({ filters: 4, depth: 1 });
export const TINY_COLORIZE_ARCHITECTURE: ColorizeArchitecture = Object.freeze({ baseFilters: 4, middleFilters: 4, deepFilters: 6, bottleneckFilters: 6, bottleneckDepth: 1 });

/** Saves a tiny upscaler with random weights for the upscale-x<scale> step. */
export async function saveTinyUpscaler(dir: string, scale: UpscaleScale, seed = 7): Promise<tfl.LayersModel> {
  const model = buildUpscaler(scale, TINY_UPSCALE_ARCHITECTURE);
  randomizeWeights(model, seed, 0.05);
  await saveModel(model, dir, denoiseMetadata({ task: upscaleTask(scale), sizeMultiple: 1, architecture: { ...TINY_UPSCALE_ARCHITECTURE } }));
  return model;
}

/** Saves a tiny colorizer with random weights, so that its chroma is far from zero. */
export async function saveTinyColorizer(dir: string, seed = 7): Promise<tfl.LayersModel> {
  const model = buildColorizer(TINY_COLORIZE_ARCHITECTURE);
  randomizeWeights(model, seed, 0.3);
  await saveModel(model, dir, colorizeMetadata());
  return model;
}

export function colorizeMetadata(overrides: Partial<ModelMetadata> = {}): ModelMetadata {
  return denoiseMetadata({ task: 'colorize', sizeMultiple: COLORIZE_SIZE_MULTIPLE, inputChannels: 1, architecture: { ...TINY_COLORIZE_ARCHITECTURE }, ...overrides });
}

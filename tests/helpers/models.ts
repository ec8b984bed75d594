import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

import { buildDenoiser, DENOISE_SIZE_MULTIPLE, type DenoiseArchitecture } from '../../src/models/denoise.js';
import type { ModelMetadata } from '../../src/models/metadata.js';
import { saveModel } from '../../src/models/storage.js';

export const TINY_ARCHITECTURE: DenoiseArchitecture = Object.freeze({ baseFilters: 4, middleFilters: 6, bottleneckFilters: 8, bottleneckDepth: 1 });

/**
 * Gives every weight a small random value, so that the residual head is not the zero-initialised
 * identity and tests see a real, non-trivial convolutional network.
 */
export function randomizeWeights(model: tfl.LayersModel, seed = 7): void {
  const values = model.getWeights().map((weight, index) => tf.randomNormal(weight.shape, 0, 0.1, 'float32', seed + index));
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

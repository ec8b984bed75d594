import * as tf from '@tensorflow/tfjs-core';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../src/backend/select.js';
import { applyStep } from '../src/models/apply.js';
import { buildDenoiser, countFlopsPerPixel, denoiseBatch, validateArchitecture } from '../src/models/denoise.js';
import { loadModel, saveModel } from '../src/models/storage.js';
import { denoiseMetadata, randomizeWeights, TINY_ARCHITECTURE } from './helpers/models.js';
import { syntheticRgb } from './helpers/images.js';

let dir: string;

beforeAll(async () => {
  await initBackend('wasm');
  dir = await mkdtemp(path.join(os.tmpdir(), 'darkroom-model-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('denoise model', () => {
  it('keeps the input size for multiples of 4', () => {
    const model = buildDenoiser(TINY_ARCHITECTURE);
    const output = model.predict(tf.zeros([2, 36, 20, 3])) as tf.Tensor;
    expect(output.shape).toEqual([2, 36, 20, 3]);
  });

  it('starts as the identity', async () => {
    const model = buildDenoiser(TINY_ARCHITECTURE);
    const input = tf.randomUniform([1, 16, 16, 3], 0, 1, 'float32', 3);
    const difference = await tf.max(tf.abs(tf.sub(model.predict(input) as tf.Tensor, input))).data();
    expect(difference[0]).toBe(0);
  });

  it('round-trips through save and load', async () => {
    const model = buildDenoiser(TINY_ARCHITECTURE);
    randomizeWeights(model);
    const modelDir = path.join(dir, 'roundtrip');
    await saveModel(model, modelDir, denoiseMetadata());

    const loaded = await loadModel(modelDir);
    const input = tf.randomUniform([1, 24, 24, 3], 0, 1, 'float32', 5);
    const before = await (model.predict(input) as tf.Tensor).data();
    const after = await (loaded.model.predict(input) as tf.Tensor).data();
    expect(Array.from(after)).toEqual(Array.from(before));
    expect(loaded.metadata.task).toBe('denoise');
  });

  it('counts FLOPs per pixel through the strides', () => {
    const model = buildDenoiser({ baseFilters: 2, middleFilters: 4, bottleneckFilters: 8, bottleneckDepth: 1 });
    const full = 2 * 9 * (3 * 2 + 2 * 2 + 2 * 2 + 2 * 3);
    const half = (2 * 9 * (2 * 4 + 4 * 4 + 4 * 4)) / 4 + (2 * 9 * 4 * 2) / 4;
    const quarter = (2 * 9 * (4 * 8 + 8 * 8)) / 16 + (2 * 9 * 8 * 4) / 16;
    expect(countFlopsPerPixel(model)).toBeCloseTo(full + half + quarter, 6);
  });

  it('rejects a bad architecture with the option message', () => {
    expect(() => validateArchitecture({ baseFilters: 0 })).toThrow('Expected an integer from 1 to 512 for architecture.baseFilters but received 0');
  });

  it('clips its output to [0, 1]', async () => {
    const model = buildDenoiser(TINY_ARCHITECTURE);
    randomizeWeights(model, 11);
    const output = denoiseBatch(model, tf.randomUniform([1, 32, 32, 3], 0, 1, 'float32', 2) as tf.Tensor4D);
    expect((await tf.min(output).data())[0]).toBeGreaterThanOrEqual(0);
    expect((await tf.max(output).data())[0]).toBeLessThanOrEqual(1);
  });
});

describe('tiled denoising', () => {
  it('matches the whole-image result', async () => {
    const model = buildDenoiser(TINY_ARCHITECTURE);
    randomizeWeights(model, 3);
    const width = 300;
    const height = 198;
    const rgb = syntheticRgb(width, height);
    const loaded = { model, metadata: denoiseMetadata(), dir };

    // One tile larger than the image is a whole-image run: the tiler mirrors the short side up
    // to a multiple of 4, as it does for every tile at the border.
    const whole = await applyStep('denoise', loaded, { width, height, rgb }, { tileSize: 304, overlap: 0 });
    const tiled = await applyStep('denoise', loaded, { width, height, rgb }, { tileSize: 128, overlap: 48 });

    let maxDifference = 0;
    let sumDifference = 0;
    for (let i = 0; i < rgb.length; i++) {
      const difference = Math.abs(whole.rgb[i] - tiled.rgb[i]);
      maxDifference = Math.max(maxDifference, difference);
      sumDifference += difference;
    }
    expect(maxDifference).toBeLessThanOrEqual(2);
    expect(sumDifference / rgb.length).toBeLessThan(0.01);
  });

  it('rejects a model trained for another task', async () => {
    const model = buildDenoiser(TINY_ARCHITECTURE);
    const loaded = { model, metadata: denoiseMetadata({ task: 'colorize' }), dir: '/models/x' };
    await expect(applyStep('denoise', loaded, { width: 8, height: 8, rgb: new Uint8Array(192) }, { tileSize: 32, overlap: 4 })).rejects.toThrow(
      'The model in /models/x was trained for "colorize", not for the "denoise" step',
    );
  });
});

import * as tf from '@tensorflow/tfjs-core';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../src/backend/select.js';
import { applyStep } from '../src/models/apply.js';
import { loadModel } from '../src/models/storage.js';
import { buildUpscaler, type UpscaleScale, upscaleReceptiveRadius } from '../src/models/upscale.js';
import { syntheticRgb } from './helpers/images.js';
import { saveTinyUpscaler, TINY_UPSCALE_ARCHITECTURE } from './helpers/models.js';

let dir: string;

beforeAll(async () => {
  await initBackend('wasm');
  dir = await mkdtemp(path.join(os.tmpdir(), 'darkroom-upscale-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('upscale model', () => {
  it('enlarges any size by its scale', () => {
    for (const scale of [2, 4] as const) {
      const model = buildUpscaler(scale, TINY_UPSCALE_ARCHITECTURE);
      const output = model.predict(tf.zeros([1, 7, 5, 3])) as tf.Tensor;
      expect(output.shape).toEqual([1, 7 * scale, 5 * scale, 3]);
    }
  });

  it('starts as bilinear upsampling', async () => {
    const model = buildUpscaler(2, TINY_UPSCALE_ARCHITECTURE);
    const input = tf.randomUniform([1, 6, 6, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
    const bilinear = tf.image.resizeBilinear(input, [12, 12], false, true);
    const difference = await tf.max(tf.abs(tf.sub(model.predict(input) as tf.Tensor, bilinear))).data();
    expect(difference[0]).toBeLessThan(1e-6);
  });

  it('round-trips through save and load with its custom layers', async () => {
    const modelDir = path.join(dir, 'roundtrip');
    const model = await saveTinyUpscaler(modelDir, 4);
    const loaded = await loadModel(modelDir);
    const input = tf.randomUniform([1, 8, 8, 3], 0, 1, 'float32', 5);
    const before = await (model.predict(input) as tf.Tensor).data();
    const after = await (loaded.model.predict(input) as tf.Tensor).data();
    expect(Array.from(after)).toEqual(Array.from(before));
    expect(loaded.metadata.task).toBe('upscale-x4');
  });
});

describe('tiled upscaling', () => {
  for (const scale of [2, 4] as UpscaleScale[]) {
    it(`matches the whole-image result at x${scale}`, async () => {
      const modelDir = path.join(dir, `tiled-${scale}`);
      await saveTinyUpscaler(modelDir, scale, 11);
      const loaded = await loadModel(modelDir);
      const width = 150;
      const height = 97;
      const rgb = syntheticRgb(width, height);
      const overlap = 2 * upscaleReceptiveRadius(TINY_UPSCALE_ARCHITECTURE);

      const whole = await applyStep(`upscale-x${scale}`, loaded, { width, height, rgb }, { tileSize: 152, overlap: 0 });
      const tiled = await applyStep(`upscale-x${scale}`, loaded, { width, height, rgb }, { tileSize: 48, overlap });

      expect([tiled.width, tiled.height]).toEqual([width * scale, height * scale]);
      expect(tiled.rgb.length).toBe(width * scale * height * scale * 3);
      let maxDifference = 0;
      let sumDifference = 0;
      for (let i = 0; i < whole.rgb.length; i++) {
        const difference = Math.abs(whole.rgb[i] - tiled.rgb[i]);
        maxDifference = Math.max(maxDifference, difference);
        sumDifference += difference;
      }
      expect(maxDifference).toBeLessThanOrEqual(1);
      expect(sumDifference / whole.rgb.length).toBeLessThan(0.01);
    });
  }

  it('rejects a model trained for the other scale', async () => {
    const modelDir = path.join(dir, 'wrong-scale');
    await saveTinyUpscaler(modelDir, 2);
    const loaded = await loadModel(modelDir);
    await expect(applyStep('upscale-x4', loaded, { width: 8, height: 8, rgb: new Uint8Array(192) }, { tileSize: 32, overlap: 4 })).rejects.toThrow(
      `The model in ${modelDir} was trained for "upscale-x2", not for the "upscale-x4" step`,
    );
  });
});
